"""The SQLite Store: rows on disk, one writer thread with group commit, readers that never wait.

Rule: every write is an op queued to the one writer thread, which runs up to ``max_group`` ops
in one transaction (each applying `dtm.core.writes` to the row read inside it), commits once
(WAL, synchronous=FULL), and only then publishes the new state and answers the callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from dtm.core.digest import digest
from dtm.core.writes import wrong_epoch
from dtm.errors import ErrInternal, ErrSyntaxInvalidArgs, ErrUnavailable
from dtm.storage.base import StoreStats, take_within
from dtm.storage.sqlite_ops import Command, Delete, Purge, Put, Replicate, execute
from dtm.storage.sqlite_schema import (
    COLS,
    Snapshot,
    connect,
    fails_transaction,
    initialise,
    rollback,
    to_row,
    translate,
    write_meta,
)
from dtm.wire import MAX_INT, ReplicateRequest, ReplicateResponse, Row, RowId


@dataclass(frozen=True, slots=True)
class CommitCounters:
    """What the writer has done since open, for metrics."""

    commits: int  # transactions committed (one fsync each)
    ops: int  # ops answered by those commits
    failed_commits: int  # groups whose transaction failed (every op in them failed)


@dataclass(frozen=True, slots=True)
class _Pending:
    command: Command
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


_Answers = list[tuple[asyncio.Future[Any], object]]
T = TypeVar("T")


class SqliteStore:
    """A node's rows in one SQLite file. Writes go through the writer thread; reads do not.

    ``now_ms`` is called on the writer thread (it must be thread-safe, as a clock read is).
    Read methods may be called from any thread: each thread gets its own read connection.
    ``on_commit(group_size)`` runs on the writers' event loop after each committed group.
    A write whose caller is cancelled may still commit: cancelling only stops the waiting.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: str,
        epoch: str,
        snap: Snapshot,
        now_ms: Callable[[], int],
        max_group: int,
        busy_timeout_ms: int,
        on_commit: Callable[[int], None] | None,
    ) -> None:
        self._wconn = conn
        self._path = path
        self._epoch = epoch
        self._snap = snap
        self._now_ms = now_ms
        self._max_group = max_group
        self._busy_timeout_ms = busy_timeout_ms
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._accepting = True
        self._closed = False
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._commits = self._ops = self._failed = 0
        self._thread = threading.Thread(
            target=self._writer_main, name=f"dtm-store-writer-{snap.state.node}", daemon=True
        )
        self._thread.start()

    @classmethod
    def open(
        cls,
        path: str | Path,
        node: str,
        now_ms: Callable[[], int],
        max_clock_offset_ms: int = 500,
        max_group: int = 512,
        *,
        new_epoch: Callable[[], str],
        busy_timeout_ms: int = 5000,
        on_commit: Callable[[int], None] | None = None,
    ) -> SqliteStore:
        """Open the store at ``path``, or create it with the epoch ``new_epoch()`` returns.

        Refuses (ErrSyntaxInvalidArgs) a file that belongs to another node.
        """
        if max_group < 1 or busy_timeout_ms < 0:
            raise ErrSyntaxInvalidArgs("max_group must be >= 1 and busy_timeout_ms >= 0")
        where = str(path)
        try:
            conn = connect(where, busy_timeout_ms)
        except sqlite3.Error as exc:
            raise translate(exc, f"opening {where}") from exc
        try:
            snap, epoch = initialise(conn, where, node, new_epoch, max_clock_offset_ms)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, Exception):
                raise translate(exc, f"opening {where}") from exc
            raise
        return cls(conn, where, epoch, snap, now_ms, max_group, busy_timeout_ms, on_commit)

    # ------------------------------------------------------------------ reads

    @property
    def node(self) -> str:
        return self._snap.state.node

    @property
    def epoch(self) -> str:
        return self._epoch

    def last_version(self) -> int:
        return self._snap.state.last_version

    def stats(self) -> StoreStats:
        s = self._snap
        return StoreStats(s.live, s.tombstones, s.state.clock.last, s.skew_events, dict(s.applied))

    def commit_counters(self) -> CommitCounters:
        """Commits, ops and failed commits since open."""
        return CommitCounters(self._commits, self._ops, self._failed)

    def get(self, key: str) -> Row | None:
        rows = self._query(f"SELECT {COLS} FROM rows WHERE key = ?", (key,))
        return rows[0] if rows else None

    def scan(
        self,
        after: str | None,
        limit: int,
        max_bytes: int | None = None,
        tombstones: bool = False,
    ) -> list[Row]:
        if limit <= 0:
            return []
        live = "" if tombstones else "deleted = 0"
        if after is None:
            where = f"WHERE {live}" if live else ""
            sql = f"SELECT {COLS} FROM rows {where} ORDER BY key LIMIT ?"
            return self._query(sql, (limit,), max_bytes)
        where = f"WHERE key > ? AND {live}" if live else "WHERE key > ?"
        sql = f"SELECT {COLS} FROM rows {where} ORDER BY key LIMIT ?"
        return self._query(sql, (after, limit), max_bytes)

    def changes(self, since: int, limit: int, max_bytes: int | None = None) -> list[Row]:
        if limit <= 0:
            return []
        sql = f"SELECT {COLS} FROM rows WHERE version > ? ORDER BY version LIMIT ?"
        return self._query(sql, (since, limit), max_bytes)

    def digest(self, buckets: int) -> list[str]:
        return digest(self._iterate(f"SELECT {COLS} FROM rows", ()), buckets)

    def bucket_rows(self, bucket: int, buckets: int) -> list[Row]:
        sql = f"SELECT {COLS} FROM rows WHERE dtm_bucket(key, ?) = ? ORDER BY key"
        return self._query(sql, (buckets, bucket))

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with self._lock:
                if self._closed:
                    raise ErrUnavailable("the store is closed")
                conn = connect(self._path, self._busy_timeout_ms)
                conn.execute("PRAGMA query_only = ON")
                self._readers.append(conn)
            self._local.conn = conn
        return conn

    def _query(self, sql: str, params: tuple[Any, ...], max_bytes: int | None = None) -> list[Row]:
        """The rows of ``sql``; with ``max_bytes``, only those `take_within` keeps (the rest are
        never read)."""
        if self._closed:
            raise ErrUnavailable("the store is closed")
        try:
            if max_bytes is None:
                # fetchall() ends the statement, so the next read starts a fresh WAL snapshot.
                return [to_row(t) for t in self._reader().execute(sql, params).fetchall()]
            cur = self._reader().execute(sql, params)
            try:
                return take_within(map(to_row, cur), MAX_INT, max_bytes)
            finally:
                cur.close()  # ends the statement, as fetchall() does
        except sqlite3.Error as exc:
            raise translate(exc, "reading") from exc

    def _iterate(self, sql: str, params: tuple[Any, ...]) -> Iterator[Row]:
        if self._closed:
            raise ErrUnavailable("the store is closed")
        try:
            for t in self._reader().execute(sql, params):
                yield to_row(t)
        except sqlite3.Error as exc:
            raise translate(exc, "reading") from exc

    # ------------------------------------------------------------------ writes

    async def put(
        self, key: str, value: msgspec.Raw, seen_hlc: int = 0, deadline_ms: int = 0
    ) -> Row:
        return _expect(Row, await self._submit(Put(key, value, seen_hlc, deadline_ms)))

    async def delete(self, key: str, seen_hlc: int = 0, deadline_ms: int = 0) -> Row:
        return _expect(Row, await self._submit(Delete(key, seen_hlc, deadline_ms)))

    async def replicate(self, batch: ReplicateRequest, deadline_ms: int = 0) -> ReplicateResponse:
        wrong = wrong_epoch(self._epoch, batch)
        if wrong is not None:
            raise wrong
        return _expect(ReplicateResponse, await self._submit(Replicate(batch, deadline_ms)))

    async def purge(self, ids: list[RowId], deadline_ms: int = 0) -> int:
        return _expect(int, await self._submit(Purge(list(ids), deadline_ms)))

    async def close(self) -> None:
        """Answer every queued write, stop the writer thread and close every connection."""
        with self._lock:
            if self._accepting:
                self._accepting = False
                self._queue.put(None)
        await asyncio.to_thread(self._thread.join)
        with self._lock:
            self._closed = True
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()

    async def _submit(self, command: Command) -> object:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            if not self._accepting:
                raise ErrUnavailable("the store is closed")
            self._queue.put(_Pending(command, loop, future))
        return await future

    # ------------------------------------------------------------------ the writer thread

    def _writer_main(self) -> None:
        try:
            stop = False
            while not stop:
                first = self._queue.get()
                if first is None:
                    break
                group = [first]
                while len(group) < self._max_group:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stop = True
                        break
                    group.append(item)
                self._run_group(group)
        finally:
            with self._lock:
                self._accepting = False
            self._fail_leftovers()
            self._wconn.close()

    def _fail_leftovers(self) -> None:
        """Only after a writer crash can ops still be queued: none may stay pending."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self._settle([item], [ErrUnavailable("the store stopped")], committed=False)

    def _run_group(self, group: list[_Pending]) -> None:
        """One transaction, one fsync for the whole group; on failure nothing advances."""
        conn = self._wconn
        start = snap = self._snap
        outcomes: list[object] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for pending in group:
                snap, out = self._run_op(conn, snap, pending.command)
                outcomes.append(out)
            if snap is start:
                conn.execute("ROLLBACK")  # nothing changed (e.g. only "not found"): no fsync
            else:
                write_meta(conn, snap)
                conn.execute("COMMIT")
        except BaseException as exc:
            rollback(conn)
            self._failed += 1
            err = translate(exc, "committing writes")
            errors: list[object] = [type(err)(err.message) for _ in group]
            self._settle(group, errors, committed=False)
            if not isinstance(exc, Exception):
                raise
            return
        self._snap = snap  # published only after the commit: readers never see ahead of disk
        changed = snap is not start
        if changed:
            self._commits += 1
            self._ops += len(group)
        self._settle(group, outcomes, committed=changed)

    def _run_op(
        self, conn: sqlite3.Connection, snap: Snapshot, command: Command
    ) -> tuple[Snapshot, object]:
        """One op inside its own savepoint: a failing op is undone alone and answered an error."""
        conn.execute("SAVEPOINT op")
        try:
            new, out = execute(conn, snap, command, self._now_ms)
        except Exception as exc:
            if fails_transaction(exc):
                raise
            conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")
            return snap, translate(exc, f"applying a {type(command).__name__.lower()}")
        conn.execute("RELEASE op")
        return new, out

    def _settle(self, group: list[_Pending], outcomes: list[object], committed: bool) -> None:
        """Answer each op's future on its own loop, then tell the owner a group committed."""
        by_loop: dict[asyncio.AbstractEventLoop, _Answers] = {}
        for pending, out in zip(group, outcomes, strict=True):
            by_loop.setdefault(pending.loop, []).append((pending.future, out))
        notify = self._on_commit if committed else None
        for loop, answers in by_loop.items():
            # A closed loop raises RuntimeError: nobody is waiting for these answers any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_answer, answers, notify, len(answers))


def _answer(answers: _Answers, notify: Callable[[int], None] | None, size: int) -> None:
    for future, out in answers:
        if future.done():
            continue  # the caller was cancelled; its write still happened
        if isinstance(out, BaseException):
            future.set_exception(out)
        else:
            future.set_result(out)
    if notify is not None:
        notify(size)


def _expect(kind: type[T], out: object) -> T:
    if not isinstance(out, kind):
        raise ErrInternal(f"the writer answered {type(out).__name__}, not {kind.__name__}")
    return out
