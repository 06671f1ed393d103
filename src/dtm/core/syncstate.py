"""The sync process's state machine: it returns work, the shell performs it and reports back.

Rule: state changes only through ``on_page`` / ``on_ack`` / ``on_purged`` / ``on_repaired`` /
``forget`` with what a node durably answered (and ``on_saved`` with what the state file holds),
each delegating its decision to one pure rule (`syncplan`, `conflicts`, `purge`, `repair`);
the tombstone bookkeeping is its half in `synctombs`, the state file its half in `syncsaved`;
nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dtm.core import purge as purge_rule
from dtm.core.conflicts import Conflict, Delivery, conflict
from dtm.core.hlc import physical_ms
from dtm.core.syncmemo import Held, Inbox, Lru, Seen
from dtm.core.syncplan import (
    Batch,
    Cursor,
    Pair,
    advance,
    cursor_of,
    fetch_since,
    lag_versions,
    page_complete,
    page_reach,
    plan_batches,
)
from dtm.core.syncsaved import Saved
from dtm.core.synctombs import Tombstones, WriteKey
from dtm.wire import (
    ChangesPage,
    ReplicateResponse,
)

RECENT_KEYS = 4096  # keys per node the engine remembers at least (what is known held: 4x)


@dataclass(frozen=True, slots=True)
class PageOutcome:
    """What to do with a page: send ``batches``; or, if ``refetch``, read the feed again."""

    batches: tuple[Batch, ...]
    refetch: bool
    conflicts: tuple[Conflict, ...]


class SyncEngine(Tombstones, Saved):
    """Cursors, epochs, purge candidates and the conflict log of one sync process."""

    def __init__(
        self,
        nodes: Sequence[str],
        *,
        recent: int = RECENT_KEYS,
        log_size: int = 1000,
        purge_fence_ms: int = 0,
    ) -> None:
        self.nodes = tuple(nodes)
        self.purge_fence_ms = purge_fence_ms
        self._decided: dict[WriteKey, int] = {}  # when each purge was decided
        # Purges past their fence go into the state file before the first call sends them, so a
        # restarted sync finishes a purge that some nodes confirmed (their feeds no longer show
        # the tombstone, and the others' feeds were read past it): `durable` are those saved.
        self._persist: set[WriteKey] = set()
        self.durable: set[WriteKey] = set()
        self.forgotten: set[str] = set()
        self._members: list[str] = list(self.nodes)
        self.cursors: dict[Pair, Cursor] = {}
        self.epochs: dict[str, str] = {}
        self.last_versions: dict[str, int] = {}
        self.candidates: dict[WriteKey, purge_rule.Candidate] = {}
        self._recent_rows: dict[str, Lru] = {n: Lru(recent) for n in nodes}
        self._recent_in: dict[str, Inbox] = {n: Inbox(recent) for n in nodes}
        self.held: dict[str, Held] = {n: Held(recent * 4) for n in nodes}
        # Pairs whose cursor moved without a batch (the echo rule of `on_ack`): the target's own
        # record of the source's feed (`applied`, which sessions read) is owed an empty batch.
        self.owed_applied: dict[Pair, int] = {}  # pair -> since when
        # How far each target may record its source's feed as applied: the reach of the last page
        # that ended the feed (or echo), which a full page's cursor move does not change.
        self.claims: dict[Pair, Cursor] = {}
        self.conflict_log: deque[Conflict] = deque(maxlen=log_size)
        self.conflict_total = 0
        self._seen_conflicts: Seen = Seen(log_size * 4)
        self.pair_conflicts: dict[Pair, int] = {}
        self.rows_sent: dict[Pair, int] = {}
        self.oldest_pending: dict[Pair, int] = {}  # hlc of the oldest row not yet applied
        self.observed: dict[str, int] = {}  # how far each node's feed has been read
        self.purged = 0
        self.dirty = False  # cursors changed since the last snapshot

    # ------------------------------------------------------------ membership

    @property
    def members(self) -> list[str]:
        """The nodes not forgotten, in config order (kept up to date by `forget`/`restore`)."""
        return self._members

    def forget(self, node: str) -> None:
        """Remove ``node`` for good: no more polling, no batches, no purge held back by it."""
        self.forgotten.add(node)
        self._members = [n for n in self.nodes if n not in self.forgotten]
        for pair in [p for p in self.cursors if node in p]:
            del self.cursors[pair]
        for pair in [p for p in self.claims if node in p]:
            del self.claims[pair]
        self.dirty = True

    def targets(self, source: str, reachable: Iterable[str]) -> dict[str, str]:
        """The targets a source's rows go to now: reachable members with a known epoch."""
        ok = set(reachable)
        return {
            t: self.epochs[t] for t in self.members if t != source and t in ok and t in self.epochs
        }

    # ------------------------------------------------------------ the cursor path

    def plan_fetch(self, source: str, reachable: Iterable[str]) -> int | None:
        """Where to read ``source``'s feed, or None if no target can take its rows now."""
        if source not in self.members:
            return None
        if source not in self.epochs:  # not heard from yet: read it to learn its epoch
            others = [t for t in self.members if t != source]
            return fetch_since(self.cursors, source, others, self.epochs) or 0
        return fetch_since(self.cursors, source, self.targets(source, reachable), self.epochs)

    def learn_epoch(self, node: str, epoch: str, last_version: int) -> bool:
        """Take in a node's current epoch and version (from any answer of that node); True if
        the epoch changed from a known one (the node was wiped or restored)."""
        changed = self.epochs.get(node) not in (None, epoch)
        if changed:
            self._recent_rows[node].clear()
            self._recent_in[node].clear()
            self.held[node].clear()
            self.observed.pop(node, None)
            for pair in [p for p in self.owed_applied if node in p]:
                del self.owed_applied[pair]
        self.epochs[node] = epoch
        if changed or last_version > self.last_versions.get(node, -1):
            self.last_versions[node] = last_version
        return changed

    def look_since(self, target: str) -> int | None:
        """Where to read ``target``'s feed just before writing into it (None: it was never
        read). Always asked, even when the target seems unchanged: what the sync knows of the
        target's last version may be behind (a write made there while its feed's answer was on
        the way), and a write missed here is a conflict never logged."""
        return self.observed.get(target)

    def on_page(
        self,
        source: str,
        since: int,
        limit: int,
        page: ChangesPage,
        reachable: Iterable[str],
        now_ms: int,
    ) -> PageOutcome:
        """A page of ``source``'s feed read at ``since``: the batches each target needs."""
        self.learn_epoch(source, page.epoch, page.last_version)
        targets = self.targets(source, reachable)
        again = fetch_since(self.cursors, source, targets, self.epochs)
        if again is not None and again < since:
            return PageOutcome((), True, ())
        found = self.observe(source, page, since, limit, now_ms)
        batches = plan_batches(page, since, limit, self.cursors, targets, self.epochs, self.held)
        found += self._left_out(page, batches, now_ms)
        if page_complete(page, limit):
            self._claim_caught_up(source, page_reach(page, since, limit), targets, now_ms)
        for b in batches:
            if b.rows:
                self.oldest_pending[(b.source, b.target)] = b.rows[0].hlc
        return PageOutcome(tuple(batches), False, tuple(found))

    def observe(
        self, node: str, page: ChangesPage, since: int, limit: int, now_ms: int
    ) -> list[Conflict]:
        """Take in rows of ``node``'s feed (read to plan, or just before writing into it):
        the conflicts they reveal, and the tombstones it holds."""
        self.learn_epoch(node, page.epoch, page.last_version)
        found: list[Conflict] = []
        self._recent_rows[node].put_all(page.rows)
        self.held[node].note_all(page.rows)
        inbox = self._recent_in[node]
        if inbox:  # deliveries into this node that its own rows may have met
            for row in page.rows:
                d = inbox.delivery(row.key)
                if d is not None:
                    back = self._recent_in[d.source] if d.source in self.nodes else None
                    to_source = back.delivery(row.key) if back is not None else None
                    c = conflict(d, row, to_source, now_ms)
                    if c is not None:
                        found.append(c)
        for row in page.rows:
            if row.deleted:
                self._note_held(row, node, page.epoch, row.version, create=True)
        reach = page_reach(page, since, limit)
        if reach > self.observed.get(node, 0) or since == 0:
            self.observed[node] = reach
        self._log(found)
        return found

    def _left_out(self, page: ChangesPage, batches: list[Batch], now_ms: int) -> list[Conflict]:
        """A row not sent because its target holds a later write of its key is judged as if it
        had been sent and ignored there (by the target's last version known): a conflict found
        only on delivery would otherwise go unlogged whenever the target's feed is read first."""
        found: list[Conflict] = []
        for b in batches:
            theirs = self._recent_rows[b.target]
            if not theirs:
                continue
            sent = {r.key for r in b.rows}
            ack = self.last_versions.get(b.target, 0)
            back = self._recent_in[b.source]
            for row in page.rows:
                if not b.since < row.version <= b.reach or row.key in sent:
                    continue
                mine = theirs.get(row.key)
                if mine is not None:
                    d = Delivery(b.source, b.target, row, ack)
                    c = conflict(d, mine, back.delivery(row.key), now_ms)
                    if c is not None:
                        found.append(c)
        self._log(found)
        return found

    def on_ack(
        self, batch: Batch, resp: ReplicateResponse, now_ms: int, before: int | None = None
    ) -> list[Conflict]:
        """The target durably applied ``batch``: advance its cursor, note what it now holds.
        ``before`` is the target's version as known when the batch was sent (for the echo rule).

        Rows it held back (``resp.held_from`` on) are not noted: they come again with a later page.
        """
        pair = (batch.source, batch.target)
        new = advance(self.cursors, batch, self.epochs, resp.held_from)
        if new != self.cursors.get(pair):
            self.cursors[pair] = new
            self.dirty = True
        self.owed_applied.pop(pair, None)
        if batch.complete and not resp.held_from:  # a held row may supersede one below it
            self._claim(batch, batch.reach)
        if before is None:
            before = self.last_versions.get(batch.target)
        if resp.last_version >= self.last_versions.get(batch.target, 0):
            self.last_versions[batch.target] = resp.last_version
        self.rows_sent[pair] = self.rows_sent.get(pair, 0) + len(batch.rows)
        if new.version >= self.last_versions.get(batch.source, 0):
            self.oldest_pending.pop(pair, None)
        found: list[Conflict] = []
        held = resp.held_from
        rows = [r for r in batch.rows if r.version < held] if held else batch.rows
        self._recent_in[batch.target].put_all(batch.source, batch.target, resp.last_version, rows)
        theirs = self._recent_rows[batch.target]
        if theirs:  # rows read from the target that these writes may have met there
            back = self._recent_in[batch.source]
            for row in rows:
                mine = theirs.get(row.key)
                if mine is not None:
                    d = Delivery(batch.source, batch.target, row, resp.last_version)
                    c = conflict(d, mine, back.delivery(row.key), now_ms)
                    if c is not None:
                        found.append(c)
        self.held[batch.target].note_all(rows)
        for row in rows:
            if row.deleted:
                self._note_held(row, batch.target, batch.target_epoch, resp.last_version)
        if not held and before is not None and resp.last_version == before + resp.applied:
            self._echo(batch, before, resp.last_version, now_ms)
        self._log(found)
        return found

    def _echo(self, batch: Batch, before: int, after: int, now_ms: int) -> None:
        """The target's versions (before, after] are exactly this batch's applied rows (nothing
        else committed there meanwhile): a node known to hold all of them needs none of them back,
        so its cursor from the target moves over them now, and no page of the target's feed ever
        carries them to it (the echo). Its `applied` record gets an empty batch later."""
        t = batch.target
        if after == before:
            return
        if self.observed.get(t) == before:
            self.observed[t] = after
        if t not in self.epochs:
            return
        for x in self.members:
            if x == t or x not in self.epochs:
                continue
            if cursor_of(self.cursors, t, x, self.epochs) != before:
                continue
            if not self.held[x].holds_all(batch.rows):
                continue
            self.cursors[(t, x)] = Cursor(self.epochs[t], self.epochs[x], after)
            if cursor_of(self.claims, t, x, self.epochs) == before:  # else full pages owe it
                self.claims[(t, x)] = self.cursors[(t, x)]
            self.owed_applied.setdefault((t, x), now_ms)
            self.dirty = True

    def settle(self, batch: Batch, now_ms: int) -> None:
        """A batch with no rows to send (the target holds every write in its range): its cursor
        moves now, with no call; the target's `applied` record gets an empty batch later."""
        pair = (batch.source, batch.target)
        new = advance(self.cursors, batch, self.epochs)
        if new != self.cursors.get(pair):
            self.cursors[pair] = new
            self.dirty = True
        if batch.complete:
            self._claim(batch, batch.reach)
        self.owed_applied.setdefault(pair, now_ms)

    def _claim_caught_up(
        self, source: str, reach: int, targets: dict[str, str], now_ms: int
    ) -> None:
        """A page that ended ``source``'s feed at ``reach``: a target whose cursor is there
        already (moved by full pages) holds it all, and its `applied` record is owed that."""
        for t, t_epoch in targets.items():
            pair = (source, t)
            if reach <= 0 or cursor_of(self.cursors, source, t, self.epochs) != reach:
                continue
            if cursor_of(self.claims, source, t, self.epochs) >= reach:
                continue
            self.claims[pair] = Cursor(self.epochs[source], t_epoch, reach)
            self.owed_applied.setdefault(pair, now_ms)

    def _claim(self, batch: Batch, version: int) -> None:
        """The target holds the source's feed through ``version`` (a page that ended it)."""
        pair = (batch.source, batch.target)
        if batch.source_epoch != self.epochs.get(batch.source, batch.source_epoch):
            return
        if batch.target_epoch != self.epochs.get(batch.target, batch.target_epoch):
            return
        old = cursor_of(self.claims, batch.source, batch.target, self.epochs)
        self.claims[pair] = Cursor(batch.source_epoch, batch.target_epoch, max(old, version))

    def applied_batch(self, pair: Pair) -> Batch | None:
        """The empty batch that brings a target's `applied` record of a source up to what it
        holds: the cursor as of the last page that ended the source's feed (None: nothing yet)."""
        s, t = pair
        if s not in self.epochs or t not in self.epochs or pair not in self.cursors:
            return None
        c = min(
            cursor_of(self.claims, s, t, self.epochs), cursor_of(self.cursors, s, t, self.epochs)
        )
        if c <= 0:
            return None
        return Batch(s, self.epochs[s], t, self.epochs[t], c, c, ())

    def _log(self, found: list[Conflict]) -> None:
        fresh: list[Conflict] = []
        for c in found:
            ident = (c.key, c.winner.hlc, c.winner.origin, c.loser.hlc, c.loser.origin)
            if ident in self._seen_conflicts:
                continue
            self._seen_conflicts.put(ident, True)
            fresh.append(c)
        found[:] = fresh
        for c in found:
            self.conflict_log.append(c)
            self.conflict_total += 1
            pair = (
                (c.winner.origin, c.node) if c.winner.origin != c.node else (c.loser.origin, c.node)
            )
            self.pair_conflicts[pair] = self.pair_conflicts.get(pair, 0) + 1

    # ------------------------------------------------------------ status and persistence

    def lag(self, source: str, target: str, now_ms: int) -> tuple[int, int, float | None]:
        """(cursor, lag in versions, lag in seconds or None if unknown) of a pair."""
        cur = cursor_of(self.cursors, source, target, self.epochs)
        top = self.last_versions.get(source, 0)
        versions = lag_versions(self.cursors, source, target, self.epochs, top)
        if versions == 0:
            return cur, 0, 0.0
        hlc = self.oldest_pending.get((source, target))
        if hlc is None:
            return cur, versions, None
        return cur, versions, max(0.0, (now_ms - physical_ms(hlc)) / 1000.0)

    def backlog(self, reachable: Iterable[str]) -> int:
        """Versions the cursor path still owes among ``reachable`` nodes (0: caught up).

        Anti-entropy looks for what the cursor path missed, so it runs only when this is 0: during
        a catch-up every bucket differs and a repair pass would only redo the cursor path's work.
        """
        nodes = list(reachable)
        return sum(
            lag_versions(self.cursors, s, t, self.epochs, self.last_versions.get(s, 0))
            for s in nodes
            for t in nodes
            if s != t
        )
