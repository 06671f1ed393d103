"""What one queued write does inside the SQLite writer's group transaction.

Rule: an op reads the current row inside the transaction, asks `dtm.core.writes` what to do,
and writes back exactly that, returning the next snapshot and the caller's answer (an expected
failure such as "not found" is an answer, not an exception).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace

import msgspec

from dtm.core.order import Outcome
from dtm.core.writes import (
    Late,
    TooFarAhead,
    Written,
    advance_applied,
    applied_through,
    apply_replicated,
    batch_too_late,
    local_delete,
    local_put,
)
from dtm.storage.sqlite_schema import COLS, Snapshot, read_row
from dtm.wire import ReplicateRequest, ReplicateResponse, Row, RowId

_UPSERT = (
    f"INSERT INTO rows ({COLS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
    "value = excluded.value, deleted = excluded.deleted, version = excluded.version, "
    "hlc = excluded.hlc, origin = excluded.origin"
)
_UPSERT_PEER = (
    "INSERT INTO peers (source, epoch, version) VALUES (?, ?, ?) ON CONFLICT (source) "
    "DO UPDATE SET epoch = excluded.epoch, version = excluded.version"
)
_PURGE = "DELETE FROM rows WHERE key = ? AND deleted = 1 AND hlc = ? AND origin = ?"


@dataclass(frozen=True, slots=True)
class Put:
    key: str
    value: msgspec.Raw
    seen_hlc: int
    deadline_ms: int = 0


@dataclass(frozen=True, slots=True)
class Delete:
    key: str
    seen_hlc: int
    deadline_ms: int = 0


@dataclass(frozen=True, slots=True)
class Replicate:
    batch: ReplicateRequest
    deadline_ms: int = 0


@dataclass(frozen=True, slots=True)
class Purge:
    ids: list[RowId]
    deadline_ms: int = 0


Command = Put | Delete | Replicate | Purge


def execute(
    conn: sqlite3.Connection, snap: Snapshot, command: Command, now_ms: Callable[[], int]
) -> tuple[Snapshot, object]:
    """Run one op in the open transaction. An unchanged store returns ``snap`` itself.

    Each op's deadline is checked here, at the moment it is stamped or applied, under the one
    writer: a write that waited past it in the queue (a paused process, a slow fsync, a busy
    lock) is answered ErrTimeout and changes nothing."""
    if isinstance(command, Put):
        old = read_row(conn, command.key)
        w = local_put(
            snap.state, command.key, command.value, now_ms(), command.seen_hlc, command.deadline_ms
        )
        if isinstance(w, TooFarAhead):
            return _skewed(snap), w.error()
        if isinstance(w, Late):
            return snap, w.error()
        return save(conn, snap, old, w), w.row
    if isinstance(command, Delete):
        old = read_row(conn, command.key)
        res = local_delete(
            snap.state, old, command.key, now_ms(), command.seen_hlc, command.deadline_ms
        )
        if isinstance(res, TooFarAhead):
            return _skewed(snap), res.error()
        if isinstance(res, Late):
            return snap, res.error()
        if not isinstance(res, Written):
            return snap, res
        return save(conn, snap, old, res), res.row
    late = batch_too_late(snap.state, command.deadline_ms, now_ms())
    if late is not None:
        return snap, late
    if isinstance(command, Replicate):
        return replicate(conn, snap, command.batch, now_ms)
    return purge(conn, snap, command.ids)


def replicate(
    conn: sqlite3.Connection, snap: Snapshot, batch: ReplicateRequest, now_ms: Callable[[], int]
) -> tuple[Snapshot, ReplicateResponse]:
    """Merge each row by the LWW rule (holding back rows too far ahead), then record how far this
    node has applied the source: all of it, or nothing new if a row was held back."""
    applied = ignored = 0
    losers: list[Row] = []
    held: list[int] = []
    for row in batch.rows:
        old = read_row(conn, row.key)
        res = apply_replicated(snap.state, old, row, now_ms())
        if isinstance(res, TooFarAhead):
            snap = _skewed(snap)
            held.append(row.version)
        elif isinstance(res, Written):
            snap = save(conn, snap, old, res)
            applied += 1
        else:
            snap = replace(snap, state=res.state)
            ignored += 1
            if res.outcome is Outcome.LOSE:
                losers.append(row)
    through = applied_through(batch.source_version, held)
    peer = advance_applied(snap.applied.get(batch.source), batch.epoch, through)
    conn.execute(_UPSERT_PEER, (batch.source, peer.epoch, peer.version))
    snap = replace(snap, applied={**snap.applied, batch.source: peer})
    held_from = min(held) if held else 0
    return snap, ReplicateResponse(applied, ignored, snap.state.last_version, losers, held_from)


def _skewed(snap: Snapshot) -> Snapshot:
    """One more stamp refused for being too far ahead (committed with the group, counted once)."""
    return replace(snap, skew_events=snap.skew_events + 1)


def purge(conn: sqlite3.Connection, snap: Snapshot, ids: list[RowId]) -> tuple[Snapshot, int]:
    """Drop each named tombstone iff it is still exactly that write; no version moves."""
    purged = 0
    for rid in ids:
        purged += conn.execute(_PURGE, (rid.key, rid.hlc, rid.origin)).rowcount
    if purged == 0:
        return snap, 0
    return replace(snap, tombstones=snap.tombstones - purged), purged


def save(conn: sqlite3.Connection, snap: Snapshot, old: Row | None, w: Written) -> Snapshot:
    """Write ``w.row`` over ``old`` and account for it in the counters."""
    r = w.row
    value = None if r.deleted else bytes(r.value)
    conn.execute(_UPSERT, (r.key, value, int(r.deleted), r.version, r.hlc, r.origin))
    live, dead = snap.live, snap.tombstones
    if old is not None:
        if old.deleted:
            dead -= 1
        else:
            live -= 1
    if r.deleted:
        dead += 1
    else:
        live += 1
    return Snapshot(w.state, live, dead, snap.skew_events, snap.applied)
