"""The sync engine's tombstone bookkeeping: which tombstones every node holds, which purges are
decided, persisted, sent and confirmed.

Rule: a tombstone becomes a purge candidate when a node's feed shows it, every node known to hold
it is noted (at its epoch and version), and a purge is decided, persisted and sent only as
`dtm.core.purge` says (every member holds it, every cursor out of them passed it, the fence
passed, and the state file holds the decision); nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from dtm.core import purge as purge_rule
from dtm.core.repair import Repair
from dtm.core.syncplan import Cursor, Pair
from dtm.wire import ReplicateResponse, Row, RowId

WriteKey = tuple[str, int, str]  # (key, hlc, origin)


class Tombstones:
    """The purge half of `dtm.core.syncstate.SyncEngine` (which sets these attributes)."""

    candidates: dict[WriteKey, purge_rule.Candidate]
    durable: set[WriteKey]  # decided purges the state file holds
    _persist: set[WriteKey]  # decided purges to put into the state file
    _decided: dict[WriteKey, int]  # when each purge was decided
    _members: list[str]
    epochs: dict[str, str]
    cursors: dict[Pair, Cursor]
    purge_fence_ms: int
    purged: int
    dirty: bool

    def _note_held(
        self, row: Row, node: str, epoch: str, version: int, create: bool = False
    ) -> None:
        wk = (row.key, row.hlc, row.origin)
        c = self.candidates.get(wk)
        if c is None:
            if not create:
                return
            c = purge_rule.Candidate(RowId(row.key, row.hlc, row.origin))
        self.candidates[wk] = purge_rule.note_held(c, node, epoch, version)

    def purge_plan(self, reachable: Iterable[str], now_ms: int) -> dict[str, list[RowId]]:
        """Decided purges to send now, per reachable node (each after its fence)."""
        ok = set(reachable)
        members = self._members
        out: dict[str, list[RowId]] = {}
        for wk, c in self.candidates.items():
            if wk not in self.durable:
                if wk not in self._persist:
                    if purge_rule.waiting_for(c, members, self.epochs, self.cursors):
                        self._decided.pop(wk, None)
                        continue
                    decided = self._decided.setdefault(wk, now_ms)
                    if not purge_rule.fence_passed(decided, now_ms, self.purge_fence_ms):
                        continue
                    self._persist.add(wk)
                    self.dirty = True
                continue  # sent once the state file holds it
            for node in purge_rule.purge_targets(c, members):
                if node in ok:
                    out.setdefault(node, []).append(c.rid)
        return out

    def purges_decided(self) -> int:
        """Purges decided and not yet confirmed by every node."""
        return sum(
            1
            for wk, c in self.candidates.items()
            if c.purged_on or wk in self._decided or wk in self._persist
        )

    def on_purged(self, node: str, rids: Iterable[RowId], purged: int) -> None:
        """``node`` confirmed the purge of ``rids`` (each gone, or superseded there)."""
        self.purged += purged
        members = self._members
        for rid in rids:
            wk = (rid.key, rid.hlc, rid.origin)
            c = self.candidates.get(wk)
            if c is None:
                continue
            c = purge_rule.Candidate(c.rid, c.held, c.purged_on | {node})
            self.dirty = True
            if not purge_rule.purge_targets(c, members):
                del self.candidates[wk]
                self._decided.pop(wk, None)
                self._persist.discard(wk)
                self.durable.discard(wk)
            else:
                self.candidates[wk] = c

    def purge_holds(self, limit: int = 20) -> list[tuple[RowId, list[str]]]:
        """Tombstones awaiting purge and why (at most ``limit``)."""
        out: list[tuple[RowId, list[str]]] = []
        members = self._members
        for wk, c in self.candidates.items():
            reasons = purge_rule.waiting_for(c, members, self.epochs, self.cursors)
            if not reasons or wk in self._persist:
                reasons = ["decided: purged once batches read before it can no longer land"]
            if c.purged_on:
                reasons = [
                    f"{n}: purge not yet confirmed" for n in purge_rule.purge_targets(c, members)
                ]
            out.append((c.rid, reasons))
            if len(out) >= limit:
                break
        return out

    def repair_skip(self) -> set[WriteKey]:
        """Writes anti-entropy must not spread: tombstones being purged."""
        return set(self.candidates)

    def on_repaired(self, rep: Repair, resp: ReplicateResponse, target_epoch: str) -> None:
        """A repair batch was applied: its tombstones are held by the target (unless it held any
        row back: then which were taken is not known, and the next repair pass tells)."""
        if resp.held_from:
            return
        for row in rep.rows:
            if row.deleted:
                self._note_held(row, rep.target, target_epoch, resp.last_version)
