"""The sync process as a Ready/Advance state machine: `step(event)` takes in what a node
answered, `ready(now)` hands out the work to do next; the shell only performs it.

Rule: at most one feed read per source and one batch per (source, target) pair are in flight; a
source's feed is read again only once every batch planned from its last page was answered (a full
page is read ahead, and that page is used only if the cursors then start where it was read); a
node a backlog is paged into is read once per fill poll, without waiting, and never while a batch
of it is in flight (`syncfill`); a node whose call failed is left alone for a backoff
(`synchealth`); purges and anti-entropy run one at a time, never together, and anti-entropy only
when the cursor path owes nothing; the cursor file is written from a snapshot of acknowledged
cursors and decided purges, and a decided purge is sent only once a written file holds it.
Every log line is decided here, as a `Note`. The service (`dtm.sync.service`) and the simulation
(`tests/sim`) run this same loop.
"""

from __future__ import annotations

from dtm.core.conflicts import Conflict
from dtm.core.syncfill import fill_read_at
from dtm.core.synchealth import Health, Reach
from dtm.core.syncplan import Pair, page_complete
from dtm.core.syncstate import SyncEngine
from dtm.core.syncwork import (
    DEBUG,
    ERROR,
    INFO,
    WARNING,
    AntiEntropy,
    Event,
    Failed,
    Fetch,
    Fetched,
    Forget,
    LoopConfig,
    Note,
    Purge,
    Purged,
    Ready,
    Repaired,
    Save,
    Saved,
    Send,
    Sent,
    Tick,
    Work,
    quoted,
)
from dtm.wire import AntiEntropyResult, ChangesPage

FAR_MS = 3_600_000


class SyncLoop:
    """Drives a `SyncEngine`: which calls to make now, and what their answers change."""

    def __init__(self, engine: SyncEngine, cfg: LoopConfig, now_ms: int = 0) -> None:
        self.engine = engine
        self.cfg = cfg
        self.now = now_ms
        self.notes: list[Note] = []
        self.reach = Reach(engine.nodes, cfg)
        self.rounds = dict.fromkeys(engine.nodes, 0)
        self.fetching: dict[str, Fetch] = {}
        self.next_fetch: dict[str, int] = dict.fromkeys(engine.nodes, now_ms)
        self.busy: dict[Pair, Send] = {}
        self.queued: list[Send] = []
        self._out: dict[str, int] = {}  # batches queued or in flight, per source
        self._later: list[Work] = []  # decided while stepping, handed out by the next ready()
        self.ahead: dict[str, Fetched] = {}
        self.filled_at: dict[str, int] = {}  # when a backlog batch to a node was queued/answered
        self.read_at: dict[str, int] = {}  # when a node's feed read was last handed out
        self.purging = 0  # purge calls in flight
        self.repairing = False
        self.next_purge = now_ms + cfg.purge_every_ms
        self.next_repair = now_ms + cfg.anti_entropy_every_ms
        self._repair_waits = False  # a pass is due and waits for the cursor path
        self.saving = False
        self.save_at: int | None = None
        self.conflicts: list[Conflict] = []  # found since the shell last took them
        self.anti_entropy: AntiEntropyResult | None = None

    # ------------------------------------------------------------ reachability

    @property
    def health(self) -> dict[str, Health]:
        return self.reach.health

    def reachable(self) -> list[str]:
        return self.reach.reachable(self.engine.members, self.now)

    def _ok(self, node: str) -> None:
        note = self.reach.ok(node, self.now)
        if note is not None:
            self.notes.append(note)

    def _failed(self, node: str, call: str, error: str, paused: bool) -> None:
        self.notes.append(self.reach.failed(node, call, error, paused, self.now))

    def _note(self, level: int, text: str) -> None:
        self.notes.append(Note(level, text))

    # ------------------------------------------------------------ ready

    def ready(self, now_ms: int) -> Ready:
        """The work to hand out now (each item is in flight until its event is stepped in)."""
        self.now = max(self.now, now_ms)
        work: list[Work] = self._later
        self._later = []
        work += self._fetches()
        work += self._sends()
        work += self._purges()
        work += self._repair()
        work += self._save()
        notes, self.notes = tuple(self.notes), []
        return Ready(tuple(work), notes, self._wake())

    def _fetches(self) -> list[Work]:
        out: list[Work] = []
        reach = self.reachable()
        for s in self.engine.members:
            if s in self.fetching or s in self.ahead or s not in reach:
                continue
            if self.now < self.next_fetch.get(s, 0) or self._sending_from(s):
                continue
            filling = self._fill_read_at(s)
            if filling is not None and self.now < filling:
                continue
            since = self.engine.plan_fetch(s, reach)
            if since is None:
                self.next_fetch[s] = self.now + self.cfg.backoff_min_ms
                continue
            wait = 0 if filling is not None else self._wait_for(s, reach)
            out.append(self._fetch(s, since, wait))
        return out

    def _fetch(self, source: str, since: int, wait: int) -> Fetch:
        f = Fetch(source, since, self.cfg.batch, wait, self.now)
        self.fetching[source] = f
        self.read_at[source] = self.now
        return f

    def _fill_read_at(self, node: str) -> int | None:
        filled, read = self.filled_at.get(node), self.read_at.get(node)
        busy = any(t == node and not w.batch.complete for (_, t), w in self.busy.items())
        return fill_read_at(self.now, filled, read, self.cfg.fill_poll_ms, busy)

    def _wait_for(self, source: str, reach: list[str]) -> int:
        # A node not heard from yet is read at once: its epoch is needed by the others.
        if self.cfg.interval_ms is not None or source not in self.engine.epochs:
            return 0
        if len(reach) < len(self.engine.members):
            return min(self.cfg.wait_ms, self.cfg.down_wait_cap_ms)
        return self.cfg.wait_ms

    def _sending_from(self, source: str) -> bool:
        return self._out.get(source, 0) > 0

    def _queue(self, w: Send) -> None:
        self.queued.append(w)
        if not w.batch.complete:
            self.filled_at[w.batch.target] = self.now
        self._out[w.batch.source] = self._out.get(w.batch.source, 0) + 1

    def _answered(self, w: Send) -> bool:
        """``w`` is answered: it leaves the busy set (False if it was not in flight)."""
        pair = (w.batch.source, w.batch.target)
        if self.busy.get(pair) is not w:
            return False
        del self.busy[pair]
        self._out[pair[0]] -= 1
        return True

    def _sends(self) -> list[Work]:
        out: list[Work] = []
        keep: list[Send] = []
        for w in self.queued:
            pair = (w.batch.source, w.batch.target)
            if pair in self.busy:
                keep.append(w)
            else:
                self.busy[pair] = w
                out.append(w)
        self.queued = keep
        reach = set(self.reachable())
        eng = self.engine
        for pair, since in sorted(eng.owed_applied.items()):
            if pair in self.busy or pair[1] not in reach:
                continue
            if self.now < since + self.cfg.applied_delay_ms:
                continue
            b = eng.applied_batch(pair)
            del eng.owed_applied[pair]
            if b is not None:
                w = Send(b, None)
                self.busy[pair] = w
                self._out[pair[0]] = self._out.get(pair[0], 0) + 1
                out.append(w)
        return out

    def _purges(self) -> list[Work]:
        if self.purging or self.repairing or self.now < self.next_purge:
            return []
        self.next_purge = self.now + self.cfg.purge_every_ms
        out: list[Work] = []
        plan = self.engine.purge_plan(self.reachable(), self.now)
        n = self.cfg.purge_chunk
        for node, rids in sorted(plan.items()):
            for i in range(0, len(rids), n):
                out.append(Purge(node, tuple(rids[i : i + n])))
        self.purging = len(out)
        return out

    def _repair(self) -> list[Work]:
        if self.repairing or self.purging or self.now < self.next_repair:
            return []
        self.next_repair = self.now + self.cfg.anti_entropy_every_ms
        reach = self.reachable()
        owed = self.engine.backlog(reach)
        if owed:  # tried again soon: it runs as soon as the cursor path is through
            retry = min(self.cfg.anti_entropy_retry_ms, self.cfg.anti_entropy_every_ms)
            self.next_repair = self.now + retry
            if not self._repair_waits:
                self._note(INFO, f"anti-entropy waits: the cursor path still owes {owed} versions")
            self._repair_waits = True
            return []
        self._repair_waits = False
        if len(reach) < 2:
            return []
        self.repairing = True
        epochs = tuple(sorted(self.engine.epochs.items()))
        return [AntiEntropy(tuple(reach), frozenset(self.engine.repair_skip()), epochs)]

    def _save(self) -> list[Work]:
        if not self.engine.dirty or self.saving:
            return []
        if self.save_at is None:
            self.save_at = self.now + self.cfg.save_every_ms
        if self.now < self.save_at:
            return []
        self.saving = True
        self.save_at = None
        return [Save(self.engine.snapshot())]

    def _wake(self) -> int:
        times = [self.now + FAR_MS, self.next_purge, self.next_repair]
        if self.save_at is not None:
            times.append(self.save_at)
        for s in self.engine.members:
            # A source waiting for an answer (its feed read, its batches) is woken by it.
            if s not in self.fetching and s not in self.ahead and not self._sending_from(s):
                at = max(self.next_fetch.get(s, 0), self.health[s].down_until)
                times.append(max(at, self._fill_read_at(s) or 0))
                end = self.filled_at.get(s, 0) + self.cfg.fill_poll_ms
                if end > self.now:  # then it is long-polled again
                    times.append(end)
        times += [
            t + self.cfg.applied_delay_ms
            for pair, t in self.engine.owed_applied.items()
            if pair not in self.busy
        ]
        return max(self.now + 1, min(times))

    # ------------------------------------------------------------ step

    def step(self, ev: Event) -> None:
        """Take in one event (the answer to a work item, a failure, a tick, a forget)."""
        self.now = max(self.now, ev.now_ms)
        if isinstance(ev, Fetched):
            self._fetched(ev)
        elif isinstance(ev, Sent):
            self._sent(ev)
        elif isinstance(ev, Purged):
            self._purged(ev)
        elif isinstance(ev, Repaired):
            self._repaired(ev)
        elif isinstance(ev, Saved):
            self.saving = False
            if self.engine.on_saved(ev.work.state):  # decided purges may go out now
                self.next_purge = min(self.next_purge, self.now)
        elif isinstance(ev, Failed):
            self._fail(ev)
        elif isinstance(ev, Forget):
            self.engine.forget(ev.node)
            self._note(
                WARNING, f"node {ev.node} forgotten: no longer synced, no longer holds purges back"
            )
        elif isinstance(ev, Tick):
            pass

    def _fetched(self, ev: Fetched) -> None:
        f = ev.work
        if self.fetching.get(f.source) is f:
            del self.fetching[f.source]
        if ev.page.node != f.source:
            self._failed(f.source, "changes", f"answered as node {ev.page.node!r}", False)
            return
        self._ok(f.source)
        self.rounds[f.source] = self.rounds.get(f.source, 0) + 1
        if self._sending_from(f.source):
            self.ahead[f.source] = ev  # a read-ahead: used once the current batches are answered
            return
        self._page(f, ev.page)

    def _page(self, f: Fetch, page: ChangesPage) -> None:
        eng = self.engine
        old = eng.epochs.get(f.source)
        out = eng.on_page(f.source, f.since, f.limit, page, self.reachable(), self.now)
        self.conflicts += out.conflicts
        if old is not None and old != page.epoch:
            self._note(
                WARNING,
                f"{f.source} has a new epoch {page.epoch} (was {old}): it was wiped or restored;"
                " it gets a full copy and its feed is read again from 0",
            )
        if out.refetch:
            self._note(DEBUG, f"reading {f.source}'s feed again from a lower cursor")
            return
        full = not page_complete(page, f.limit)
        for b in out.batches:
            if not b.rows:  # the target holds all of it: no call now, `applied` follows later
                eng.settle(b, self.now)
                continue
            look = eng.look_since(b.target) if not full else None
            self._queue(Send(b, look, eng.last_versions.get(b.target)))
        if full and self._sending_from(f.source):  # paging a backlog: read the next page now
            self._later.append(self._fetch(f.source, out.batches[0].reach, 0))
        elif self.cfg.interval_ms is not None and not full:
            self.next_fetch[f.source] = self.now + self.cfg.interval_ms
        elif page.rows and not full:
            self.next_fetch[f.source] = self.now + self.cfg.coalesce_ms

    def _sent(self, ev: Sent) -> None:
        w, b = ev.work, ev.work.batch
        self._answered(w)
        self._ok(b.target)
        if not b.complete:
            self.filled_at[b.target] = self.now
        eng = self.engine
        if ev.looked is not None and w.look_since is not None:
            self.conflicts += eng.observe(b.target, ev.looked, w.look_since, b.reach, self.now)
        self.conflicts += eng.on_ack(b, ev.resp, self.now, w.before)
        if b.rows:
            r = ev.resp
            self._note(
                INFO,
                f"replicated {b.source} -> {b.target}: {len(b.rows)} rows, versions"
                f" {b.rows[0].version}..{b.rows[-1].version} ({r.applied} applied,"
                f" {r.ignored} already there or older)",
            )
        if ev.resp.held_from:
            self._note(
                DEBUG,
                f"{b.target} held back {b.source}'s rows from version {ev.resp.held_from}"
                " (stamped ahead of its clock): retrying",
            )
            self.next_fetch[b.source] = self.now + self.cfg.held_retry_ms
        self._after_send(b.source)

    def _after_send(self, source: str) -> None:
        ahead = self.ahead.get(source)
        if ahead is None or self._sending_from(source):
            return
        del self.ahead[source]
        since = self.engine.plan_fetch(source, self.reachable())
        if since == ahead.work.since:
            self._page(ahead.work, ahead.page)

    def _purged(self, ev: Purged) -> None:
        self.purging = max(0, self.purging - 1)
        self._ok(ev.work.node)
        self.engine.on_purged(ev.work.node, ev.work.rids, ev.purged)
        if ev.purged:
            self._note(INFO, f"purged {ev.purged} tombstones on {ev.work.node}")

    def _repaired(self, ev: Repaired) -> None:
        self.repairing = False
        eng = self.engine
        for node, (epoch, last) in sorted(ev.epochs.items()):
            eng.learn_epoch(node, epoch, last)
        repaired = 0
        for rep, resp, epoch in ev.repairs:
            eng.on_repaired(rep, resp, epoch)
            repaired += resp.applied
        self.anti_entropy = AntiEntropyResult(
            self.now, sorted(ev.epochs), ev.buckets, ev.differing, repaired, ev.error
        )
        if ev.error:
            self._note(WARNING, f"anti-entropy stopped early: {quoted(ev.error)}")
            if not ev.differing and not repaired:
                return  # it compared no bucket: there is nothing more to say
        self._note(
            WARNING if repaired else INFO,
            f"anti-entropy over {','.join(sorted(ev.epochs))}: {ev.differing} of {ev.buckets}"
            f" buckets differed, {repaired} rows repaired",
        )

    def _fail(self, ev: Failed) -> None:
        w = ev.work
        call = "sync state"
        if isinstance(w, Fetch):
            call = "changes"
            if self.fetching.get(w.source) is w:
                del self.fetching[w.source]
        elif isinstance(w, Send):
            call = "replicate"
            self._answered(w)
        elif isinstance(w, Purge):
            call = "purge"
            self.purging = max(0, self.purging - 1)
        elif isinstance(w, AntiEntropy):
            call = "anti-entropy"
            self.repairing = False
        elif isinstance(w, Save):
            self.saving = False
            self.engine.dirty = True
            self.save_at = self.now + 1000
            self._note(ERROR, f"cannot save sync state: {quoted(ev.error)}")
            return
        if ev.node in self.health:
            self._failed(ev.node, call, ev.error, ev.paused)
        if isinstance(w, Send):
            self._after_send(w.batch.source)
