"""What one queued write does inside the SQLite writer's group transaction.

Rule: an op reads the current rows inside the transaction (a replicated batch: all its keys in
one query), asks `dtm.core.writes` (a batch: `dtm.core.syncapply`) what to do, and writes back
exactly that, returning the next snapshot and the caller's answer (an expected
failure such as "not found" is an answer, not an exception).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace

import msgspec

from dtm.core.syncapply import apply_batch
from dtm.core.writes import (
    Late,
    TooFarAhead,
    Written,
    advance_applied,
    applied_through,
    batch_too_late,
    local_delete,
    local_put,
)
from dtm.errors import ErrInternal
from dtm.storage.sqlite_schema import COLS, Snapshot, read_row, to_row
from dtm.wire import ReplicateRequest, ReplicateResponse, Row, RowId

_UPSERT = (
    f"INSERT INTO rows ({COLS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
    "value = excluded.value, deleted = excluded.deleted, version = excluded.version, "
    "hlc = excluded.hlc, origin = excluded.origin"
)
# A replicated row is written only over an older write of its key: the merge decided so already,
# and the statement checks it again (a row it would not change fails the batch, never skips).
_UPSERT_NEWER = _UPSERT + " WHERE (excluded.hlc, excluded.origin) > (rows.hlc, rows.origin)"
_KEYS_PER_READ = 500  # bound parameters per query (SQLite's cap is 32766, 999 before 3.32)
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
    """Merge the batch by the LWW rule in one pass (`dtm.core.syncapply`: the rows of its keys
    read in one query, none on an empty store; the winners written in one statement), then
    record how far this node has applied the source: all of it, or nothing new if a row was
    held back."""
    rows = batch.rows
    empty = snap.live == 0 and snap.tombstones == 0
    out = apply_batch(snap.state, {} if empty else _current(conn, rows), rows, now_ms())
    live, dead = snap.live, snap.tombstones
    params: list[tuple[object, ...]] = []
    for new, old in out.written:
        live, dead = recount(live, dead, old, new)
        value = None if new.deleted else new.value  # a blob, bound as it came
        params.append((new.key, value, int(new.deleted), new.version, new.hlc, new.origin))
    if params:
        changed = conn.executemany(_UPSERT_NEWER, params).rowcount
        if changed != len(params):  # a row the merge saw older was not: never leave a hole
            raise ErrInternal(f"replicate wrote {changed} of {len(params)} rows it merged")
    through = applied_through(batch.source_version, out.held)
    peer = advance_applied(snap.applied.get(batch.source), batch.epoch, through)
    conn.execute(_UPSERT_PEER, (batch.source, peer.epoch, peer.version))
    applied = {**snap.applied, batch.source: peer}
    snap = Snapshot(out.state, live, dead, snap.skew_events + len(out.held), applied)
    held_from = min(out.held) if out.held else 0
    resp = ReplicateResponse(
        len(out.written), out.ignored, out.state.last_version, out.losers, held_from
    )
    return snap, resp


def _current(conn: sqlite3.Connection, rows: list[Row]) -> dict[str, Row]:
    """The stored rows of the keys of ``rows``, by key (absent keys are missing)."""
    keys = list(dict.fromkeys(r.key for r in rows))
    found: dict[str, Row] = {}
    for i in range(0, len(keys), _KEYS_PER_READ):
        chunk = keys[i : i + _KEYS_PER_READ]
        marks = ", ".join("?" * len(chunk))
        for t in conn.execute(f"SELECT {COLS} FROM rows WHERE key IN ({marks})", chunk):
            r = to_row(t)
            found[r.key] = r
    return found


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
    live, dead = recount(snap.live, snap.tombstones, old, r)
    return Snapshot(w.state, live, dead, snap.skew_events, snap.applied)


def recount(live: int, dead: int, old: Row | None, new: Row) -> tuple[int, int]:
    """The live and tombstone counts once ``new`` replaces ``old`` (None: a key not held)."""
    if old is not None:
        live, dead = (live, dead - 1) if old.deleted else (live - 1, dead)
    return (live, dead + 1) if new.deleted else (live + 1, dead)
