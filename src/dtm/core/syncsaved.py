"""The sync engine's state-file half: what the cursor file holds, and what a restart takes back.

Rule: a snapshot holds the cursors (each moved only by an acknowledged batch), the forgotten
nodes and the decided purges marked to persist; a purge may be sent (`durable`) only once a
written file holds it; a restore takes back only nodes the config still names, and never a
cursor from a node to itself; nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from dtm.core import purge as purge_rule
from dtm.core.syncplan import Cursor, Pair
from dtm.core.synctombs import WriteKey
from dtm.wire import CursorRecord, PurgeRecord, SyncStateFile


class Saved:
    """The state-file half of `dtm.core.syncstate.SyncEngine` (which sets these attributes)."""

    nodes: tuple[str, ...]
    cursors: dict[Pair, Cursor]
    forgotten: set[str]
    candidates: dict[WriteKey, purge_rule.Candidate]
    durable: set[WriteKey]  # decided purges the state file holds
    _persist: set[WriteKey]  # decided purges to put into the state file
    _members: list[str]
    dirty: bool

    def snapshot(self) -> SyncStateFile:
        self.dirty = False
        recs = [
            CursorRecord(s, t, c.source_epoch, c.target_epoch, c.version)
            for (s, t), c in sorted(self.cursors.items())
        ]
        purges = [
            PurgeRecord(c.rid, sorted(c.purged_on))
            for wk, c in sorted(self.candidates.items())
            if wk in self._persist
        ]
        return SyncStateFile(recs, sorted(self.forgotten), purges)

    def on_saved(self, state: SyncStateFile) -> bool:
        """The state file now holds ``state``: its purges may be sent. True if any became so."""
        saved = {(p.rid.key, p.rid.hlc, p.rid.origin) for p in state.purges}
        fresh = (saved & set(self.candidates)) - self.durable
        self.durable |= fresh
        return bool(fresh)

    def restore(self, state: SyncStateFile) -> None:
        known = set(self.nodes)
        self.forgotten = {n for n in state.forgotten if n in known}
        self._members = [n for n in self.nodes if n not in self.forgotten]
        for r in state.cursors:
            if r.source in known and r.target in known and r.source != r.target:
                self.cursors[(r.source, r.target)] = Cursor(
                    r.source_epoch, r.target_epoch, r.version
                )
        for p in state.purges:
            wk = (p.rid.key, p.rid.hlc, p.rid.origin)
            done = frozenset(n for n in p.done if n in known)
            self.candidates[wk] = purge_rule.Candidate(p.rid, {}, done)
            self._persist.add(wk)
            self.durable.add(wk)
