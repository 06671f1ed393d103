"""An in-memory Store: the same contract as SQLite, for simulations and tests.

Rule: identical behaviour to the SQLite store except durability (it forgets on exit).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

import msgspec

from dtm.core.digest import bucket_of, digest
from dtm.core.hlc import HLC
from dtm.core.syncapply import apply_batch
from dtm.core.writes import (
    Late,
    StoreState,
    TooFarAhead,
    Written,
    advance_applied,
    applied_through,
    batch_too_late,
    local_delete,
    local_put,
    wrong_epoch,
)
from dtm.storage.base import StoreStats, take_within
from dtm.wire import PeerApplied, ReplicateRequest, ReplicateResponse, Row, RowId


class MemoryStore:
    """Rows in dicts. Every method completes without yielding, so each write is atomic."""

    def __init__(
        self, node: str, epoch: str, now_ms: Callable[[], int], max_clock_offset_ms: int = 500
    ) -> None:
        self._now_ms = now_ms
        self._epoch = epoch
        self._state = StoreState(node, 0, HLC(0, max_clock_offset_ms))
        self._rows: dict[str, Row] = {}
        self._by_version: dict[int, str] = {}
        self._keys: list[str] = []  # sorted
        self._applied: dict[str, PeerApplied] = {}
        self._skew_events = 0

    @property
    def node(self) -> str:
        return self._state.node

    @property
    def epoch(self) -> str:
        return self._epoch

    def last_version(self) -> int:
        return self._state.last_version

    def get(self, key: str) -> Row | None:
        return self._rows.get(key)

    def scan(
        self,
        after: str | None,
        limit: int,
        max_bytes: int | None = None,
        tombstones: bool = False,
    ) -> list[Row]:
        start = 0 if after is None else bisect.bisect_right(self._keys, after)
        rows = (self._rows[k] for k in self._keys[start:])
        return take_within((r for r in rows if tombstones or not r.deleted), limit, max_bytes)

    def changes(self, since: int, limit: int, max_bytes: int | None = None) -> list[Row]:
        versions = sorted(v for v in self._by_version if v > since)
        return take_within((self._rows[self._by_version[v]] for v in versions), limit, max_bytes)

    def stats(self) -> StoreStats:
        dead = sum(1 for r in self._rows.values() if r.deleted)
        return StoreStats(
            len(self._rows) - dead,
            dead,
            self._state.clock.last,
            self._skew_events,
            dict(self._applied),
        )

    def _save(self, w: Written) -> Row:
        old = self._rows.get(w.row.key)
        if old is None:
            bisect.insort(self._keys, w.row.key)
        else:
            del self._by_version[old.version]
        self._rows[w.row.key] = w.row
        self._by_version[w.row.version] = w.row.key
        self._state = w.state
        return w.row

    async def put(
        self, key: str, value: msgspec.Raw, seen_hlc: int = 0, deadline_ms: int = 0
    ) -> Row:
        w = local_put(self._state, key, value, self._now_ms(), seen_hlc, deadline_ms)
        if isinstance(w, TooFarAhead):
            self._skew_events += 1
            raise w.error()
        if isinstance(w, Late):
            raise w.error()
        return self._save(w)

    async def delete(self, key: str, seen_hlc: int = 0, deadline_ms: int = 0) -> Row:
        rows = self._rows
        w = local_delete(self._state, rows.get(key), key, self._now_ms(), seen_hlc, deadline_ms)
        if isinstance(w, TooFarAhead):
            self._skew_events += 1
            raise w.error()
        if isinstance(w, Late):
            raise w.error()
        if not isinstance(w, Written):
            raise w
        return self._save(w)

    def _refuse_late(self, deadline_ms: int) -> None:
        late = batch_too_late(self._state, deadline_ms, self._now_ms())
        if late is not None:
            raise late

    async def replicate(self, batch: ReplicateRequest, deadline_ms: int = 0) -> ReplicateResponse:
        wrong = wrong_epoch(self._epoch, batch)
        if wrong is not None:
            raise wrong
        self._refuse_late(deadline_ms)
        rows = self._rows
        current = {r.key: rows[r.key] for r in batch.rows if r.key in rows}
        out = apply_batch(self._state, current, batch.rows, self._now_ms())
        for new, _old in out.written:
            self._save(Written(new, out.state))
        self._state = out.state
        self._skew_events += len(out.held)
        self._applied[batch.source] = advance_applied(
            self._applied.get(batch.source),
            batch.epoch,
            applied_through(batch.source_version, out.held),
        )
        held_from = min(out.held) if out.held else 0
        applied = len(out.written)
        return ReplicateResponse(
            applied, out.ignored, out.state.last_version, out.losers, held_from
        )

    def digest(self, buckets: int) -> list[str]:
        return digest(self._rows.values(), buckets)

    def bucket_rows(self, bucket: int, buckets: int) -> list[Row]:
        return [r for k, r in sorted(self._rows.items()) if bucket_of(k, buckets) == bucket]

    async def purge(self, ids: list[RowId], deadline_ms: int = 0) -> int:
        self._refuse_late(deadline_ms)
        purged = 0
        for rid in ids:
            row = self._rows.get(rid.key)
            if row is not None and row.deleted and (row.hlc, row.origin) == (rid.hlc, rid.origin):
                del self._rows[rid.key]
                del self._by_version[row.version]
                self._keys.remove(rid.key)
                purged += 1
        return purged

    async def close(self) -> None:
        return None
