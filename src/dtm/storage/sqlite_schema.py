"""The SQLite file of a store: its schema, its connections, its meta row, and its errors.

Rule: the meta row (node, epoch, last version, HLC upper bound, row counters) is created once,
with the database, and afterwards only rewritten in the same transaction as the rows it counts;
every sqlite3 exception becomes a dtm error in `translate` and nowhere else.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from dtm.core.digest import bucket_of
from dtm.core.hlc import HLC
from dtm.core.writes import StoreState
from dtm.errors import DtmError, ErrInternal, ErrSyntaxInvalidArgs, ErrUnavailable
from dtm.wire import NULL, PeerApplied, Row

SCHEMA_VERSION: Final = 1

SCHEMA: Final = (
    # Clustered by key (scans walk it in order); the UNIQUE version index serves the feed.
    """CREATE TABLE IF NOT EXISTS rows (
        key TEXT PRIMARY KEY,
        value BLOB,
        deleted INTEGER NOT NULL,
        version INTEGER UNIQUE NOT NULL,
        hlc INTEGER NOT NULL,
        origin TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS meta (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        schema INTEGER NOT NULL,
        node TEXT NOT NULL,
        epoch TEXT NOT NULL,
        last_version INTEGER NOT NULL,
        hlc INTEGER NOT NULL,
        live_rows INTEGER NOT NULL,
        tombstones INTEGER NOT NULL,
        skew_events INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS peers (
        source TEXT PRIMARY KEY,
        epoch TEXT NOT NULL,
        version INTEGER NOT NULL
    )""",
)
COLS: Final = "key, value, deleted, version, hlc, origin"
_META: Final = (
    "SELECT schema, node, epoch, last_version, hlc, live_rows, tombstones, skew_events "
    "FROM meta WHERE id = 0"
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a write advances, as of one commit. Replaced whole, never mutated."""

    state: StoreState
    live: int
    tombstones: int
    skew_events: int
    applied: Mapping[str, PeerApplied]


def translate(exc: BaseException, doing: str) -> DtmError:
    """The one place where foreign exceptions of the SQLite backend become dtm errors."""
    if isinstance(exc, DtmError):
        return exc
    if fails_transaction(exc):
        return ErrUnavailable(f"storage failed while {doing}: {exc}")
    if isinstance(exc, OverflowError):  # every value a request brings is checked before: ours
        return ErrInternal(f"a number is out of range while {doing}: {exc}")
    return ErrInternal(f"storage error while {doing}: {type(exc).__name__}: {exc}")


def fails_transaction(exc: BaseException) -> bool:
    """The database itself failed (I/O, lock, full, corrupt): the whole transaction is lost."""
    return isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError


def to_row(t: tuple[Any, ...]) -> Row:
    """A `Row` from a ``SELECT {COLS}`` tuple; a NULL value is a tombstone's JSON null."""
    key, value, deleted, version, hlc, origin = t
    raw = NULL if value is None else msgspec.Raw(value)
    return Row(key, raw, bool(deleted), version, hlc, origin)


def connect(path: str, busy_timeout_ms: int) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), usable from any thread."""
    conn = sqlite3.connect(
        path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
    )
    conn.create_function("dtm_bucket", 2, bucket_of, deterministic=True)
    return conn


def rollback(conn: sqlite3.Connection) -> None:
    """Abandon the open transaction, if any, on a connection that may already be failing."""
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # the transaction is gone either way


def read_row(conn: sqlite3.Connection, key: str) -> Row | None:
    """The row for ``key`` as this connection's transaction sees it."""
    found = conn.execute(f"SELECT {COLS} FROM rows WHERE key = ?", (key,)).fetchall()
    return to_row(found[0]) if found else None


def initialise(
    conn: sqlite3.Connection,
    path: str,
    node: str,
    new_epoch: Callable[[], str],
    max_offset: int,
) -> tuple[Snapshot, str]:
    """Create the schema and the meta row once (with a new epoch), or read them back.

    The persisted clock bound is kept (stamps stay monotonic across restarts, even if the machine's
    clock stepped back); it only ever holds stamps this node issued or admitted.
    """
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchall()
    if not mode or str(mode[0][0]).lower() != "wal":
        raise ErrUnavailable(f"{path}: cannot switch the database to WAL mode")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        for stmt in SCHEMA:
            conn.execute(stmt)
        meta = conn.execute(_META).fetchall()
        if not meta:
            epoch = new_epoch()
            if not epoch:
                raise ErrInternal("new_epoch returned an empty epoch")
            conn.execute(
                "INSERT INTO meta VALUES (0, ?, ?, ?, 0, 0, 0, 0, 0)", (SCHEMA_VERSION, node, epoch)
            )
            meta = conn.execute(_META).fetchall()
        schema, owner, epoch, last_version, hlc, live, dead, skews = meta[0]
        if schema != SCHEMA_VERSION:
            raise ErrSyntaxInvalidArgs(f"{path}: unknown schema version {schema}")
        if owner != node:
            raise ErrSyntaxInvalidArgs(
                f"{path} holds the data of node {owner!r}; it cannot be opened as node {node!r}"
            )
        top = conn.execute("SELECT max(version) FROM rows").fetchall()[0][0] or 0
        peers = conn.execute("SELECT source, epoch, version FROM peers").fetchall()
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
    applied = {src: PeerApplied(ep, v) for src, ep, v in peers}
    state = StoreState(node, max(last_version, top), HLC(hlc, max_offset))
    return Snapshot(state, live, dead, skews, applied), epoch


def write_meta(conn: sqlite3.Connection, snap: Snapshot) -> None:
    """Persist the version counter, the HLC upper bound and the counters, in the open txn."""
    conn.execute(
        "UPDATE meta SET last_version = ?, hlc = ?, live_rows = ?, tombstones = ?, "
        "skew_events = ? WHERE id = 0",
        (
            snap.state.last_version,
            snap.state.clock.last,
            snap.live,
            snap.tombstones,
            snap.skew_events,
        ),
    )
