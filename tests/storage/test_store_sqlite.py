"""What only the SQLite store promises: durability across reopen, group commit, failure paths."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from store_kit import T0, ManualClock, raw, remote

from dtm.core.hlc import pack
from dtm.errors import DtmError, ErrInternal, ErrSyntaxInvalidArgs, ErrUnavailable
from dtm.storage.sqlite import SqliteStore
from dtm.wire import PeerApplied, ReplicateRequest, Row


def no_new_epoch() -> str:
    raise AssertionError("an existing database must keep its epoch")


def raw_count(path: Path, where: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT count(*) FROM rows WHERE {where}").fetchone()[0])


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "n1.db"


async def test_reopen_keeps_rows_epoch_versions_counters_and_clock(db: Path) -> None:
    clock = ManualClock()
    epochs = iter(["first", "second"])
    store = SqliteStore.open(db, "n1", clock, new_epoch=lambda: next(epochs))
    try:
        for i in range(5):
            await store.put(f"k{i}", raw(i))
        await store.delete("k1")
        future = remote("zz", "x", T0 + 400)
        await store.replicate(ReplicateRequest("n2", "e2", 9, [future]))
        held = remote("zy", "x", T0 + 60_000)  # too far ahead: held back, counted, not stored
        assert (await store.replicate(ReplicateRequest("n2", "e2", 9, [held]))).held_from
        await store.replicate(ReplicateRequest("n3", "e3", 4, []))
        before = (store.changes(0, 100), store.stats(), store.last_version(), store.digest(8))
    finally:
        await store.close()

    clock.now = T0 - 3_600_000  # the machine's clock went back an hour meanwhile
    again = SqliteStore.open(db, "n1", clock, new_epoch=no_new_epoch)
    try:
        assert again.epoch == "first"
        after = (again.changes(0, 100), again.stats(), again.last_version(), again.digest(8))
        assert after == before
        assert again.stats().applied == {"n2": PeerApplied("e2", 9), "n3": PeerApplied("e3", 4)}
        row = await again.put("new", raw(1))
        assert row.version == before[2] + 1
        assert row.hlc > future.hlc and row.hlc > before[1].hlc
        stats = again.stats()
        assert stats.live_rows == raw_count(db, "deleted = 0") == 6
        assert stats.tombstones == raw_count(db, "deleted = 1") == 1
        assert stats.skew_events == 1
    finally:
        await again.close()


async def test_a_file_of_another_node_is_refused(db: Path) -> None:
    store = SqliteStore.open(db, "store1", ManualClock(), new_epoch=lambda: "e")
    await store.close()
    with pytest.raises(ErrSyntaxInvalidArgs) as err:
        SqliteStore.open(db, "store2", ManualClock(), new_epoch=no_new_epoch)
    assert "store1" in err.value.message and "store2" in err.value.message


async def test_a_file_that_is_not_a_database_is_a_dtm_error(db: Path) -> None:
    db.write_bytes(b"this is not an SQLite database, just some text" * 100)
    with pytest.raises(DtmError):
        SqliteStore.open(db, "n1", ManualClock(), new_epoch=lambda: "e")


async def test_concurrent_writes_share_commits(db: Path) -> None:
    groups: list[int] = []
    store = SqliteStore.open(
        db, "n1", ManualClock(), new_epoch=lambda: "e", on_commit=groups.append
    )
    try:
        rows = await asyncio.gather(*(store.put(f"k{i}", raw(i)) for i in range(300)))
        counters = store.commit_counters()
        assert counters.ops == 300 and counters.failed_commits == 0
        assert counters.commits < 300
        assert sum(groups) == 300 and len(groups) == counters.commits
        assert sorted(r.version for r in rows) == list(range(1, 301))
    finally:
        await store.close()
    small = SqliteStore.open(
        db, "n1", ManualClock(), max_group=4, new_epoch=no_new_epoch, on_commit=groups.append
    )
    try:
        groups.clear()
        await asyncio.gather(*(small.put(f"s{i}", raw(i)) for i in range(40)))
        assert sum(groups) == 40 and max(groups) <= 4
    finally:
        await small.close()


async def test_only_not_found_commits_nothing(db: Path) -> None:
    store = SqliteStore.open(db, "n1", ManualClock(), new_epoch=lambda: "e")
    try:
        await store.put("a", raw(1))
        commits = store.commit_counters().commits
        results = await asyncio.gather(
            *(store.delete(f"x{i}") for i in range(20)), return_exceptions=True
        )
        assert all(type(r).__name__ == "ErrNoDataFound" for r in results)
        assert store.commit_counters().commits == commits and store.last_version() == 1
    finally:
        await store.close()


async def test_a_failed_transaction_fails_its_group_and_advances_nothing(db: Path) -> None:
    clock = ManualClock()
    store = SqliteStore.open(db, "n1", clock, busy_timeout_ms=50, new_epoch=lambda: "e")
    locker = sqlite3.connect(db, isolation_level=None)
    try:
        first = await store.put("a", raw(1))
        before = (store.last_version(), store.stats(), store.changes(0, 10))
        locker.execute("BEGIN IMMEDIATE")  # another writer holds the database's write lock
        results = await asyncio.wait_for(
            asyncio.gather(
                store.put("b", raw(2)),
                store.delete("a"),
                store.replicate(ReplicateRequest("n2", "e2", 1, [remote("c", 3, T0 + 9_000)])),
                store.purge([]),
                return_exceptions=True,
            ),
            timeout=10,
        )
        assert all(isinstance(r, ErrUnavailable) for r in results), results
        assert store.commit_counters().failed_commits >= 1
        assert (store.last_version(), store.stats(), store.changes(0, 10)) == before
        locker.execute("ROLLBACK")
        clock.advance(1)
        second = await asyncio.wait_for(store.put("b", raw(2)), timeout=5)
        assert second.version == first.version + 1  # no hole where the failed group was
        assert second.hlc == pack(T0 + 1)  # the failed replicate's stamp was never observed
    finally:
        locker.close()
        await store.close()


async def test_reads_do_not_wait_for_a_blocked_writer(db: Path) -> None:
    store = SqliteStore.open(db, "n1", ManualClock(), busy_timeout_ms=30_000, new_epoch=lambda: "e")
    locker = sqlite3.connect(db, isolation_level=None)
    try:
        committed = await store.put("a", raw(1))
        locker.execute("BEGIN IMMEDIATE")
        pending = asyncio.ensure_future(store.put("b", raw(2)))
        await asyncio.sleep(0)  # let the write reach the writer, which now waits for the lock
        assert store.get("a") == committed and store.get("b") is None
        assert store.changes(0, 10) == [committed] and store.scan(None, 10) == [committed]
        assert await asyncio.to_thread(store.digest, 4) == store.digest(4)
        assert not pending.done()
        locker.execute("ROLLBACK")
        row = await asyncio.wait_for(pending, timeout=20)
        assert row.version == 2 and store.get("b") == row
    finally:
        locker.close()
        await store.close()


async def test_a_failing_op_fails_alone(db: Path) -> None:
    store = SqliteStore.open(db, "n1", ManualClock(), new_epoch=lambda: "e")
    try:
        with sqlite3.connect(db) as conn:
            conn.execute(
                "CREATE TRIGGER poison BEFORE INSERT ON rows WHEN NEW.key = 'poison' "
                "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
            )
        bad_batch = ReplicateRequest("n2", "e2", 2, [remote("ok2", 1, T0), remote("poison", 1, T0)])
        results = await asyncio.gather(
            store.put("ok1", raw(1)),
            store.put("poison", raw(1)),
            store.replicate(bad_batch),
            store.put("ok3", raw(1)),
            return_exceptions=True,
        )
        assert isinstance(results[1], ErrInternal) and isinstance(results[2], ErrInternal)
        assert [r.version for r in results if isinstance(r, Row)] == [1, 2]
        assert store.get("ok2") is None  # the failing batch was undone whole
        assert store.stats().applied == {}
        assert [r.version for r in store.changes(0, 10)] == [1, 2]
        assert store.stats().live_rows == 2
    finally:
        await store.close()


async def test_out_of_range_numbers_are_held_back_not_crashing(db: Path) -> None:
    store = SqliteStore.open(db, "n1", ManualClock(), new_epoch=lambda: "e")
    try:
        huge = Row("a", raw(1), False, 1, 1 << 70, "n2")
        res = await store.replicate(ReplicateRequest("n2", "e2", 1, [huge]))
        assert res.held_from == 1 and store.stats().hlc == 0
        assert store.last_version() == 0
        assert (await store.put("b", raw(1))).version == 1
    finally:
        await store.close()


async def test_close_answers_queued_writes_then_refuses(db: Path) -> None:
    store = SqliteStore.open(db, "n1", ManualClock(), new_epoch=lambda: "e")
    tasks = [asyncio.ensure_future(store.put(f"k{i}", raw(i))) for i in range(50)]
    await asyncio.sleep(0)  # every put is queued
    await store.close()
    rows = [t.result() for t in tasks]
    assert sorted(r.version for r in rows) == list(range(1, 51))
    with pytest.raises(ErrUnavailable):
        await store.put("late", raw(1))
    with pytest.raises(ErrUnavailable):
        store.get("k1")
    await store.close()  # twice is fine
    reopened = SqliteStore.open(db, "n1", ManualClock(), new_epoch=no_new_epoch)
    try:
        assert reopened.last_version() == 50
    finally:
        await reopened.close()


def test_the_feed_and_scans_use_indexes(db: Path) -> None:
    async def make() -> None:
        store = SqliteStore.open(db, "n1", ManualClock(), new_epoch=lambda: "e")
        await store.close()

    asyncio.run(make())
    with sqlite3.connect(db) as conn:
        feed = conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM rows WHERE version > 5 ORDER BY version LIMIT 10"
        ).fetchall()
        scan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM rows WHERE key > 'a' AND deleted = 0 "
            "ORDER BY key LIMIT 10"
        ).fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert "USING INDEX" in str(feed) and "version>?" in str(feed), feed
    assert "PRIMARY KEY" in str(scan) and "TEMP B-TREE" not in str(scan), scan
    assert mode == "wal"


async def test_a_reader_never_sees_a_version_before_its_row(db: Path) -> None:
    store = SqliteStore.open(db, "n1", ManualClock(), new_epoch=lambda: "e")
    stop = False
    checks = [0]

    def follow() -> None:  # on another thread, while the writer commits groups
        while not stop:
            v = store.last_version()
            versions = {r.version for r in store.changes(0, 10_000)}
            assert set(range(1, v + 1)) <= versions, v
            checks[0] += 1

    try:
        reader = asyncio.ensure_future(asyncio.to_thread(follow))
        for start in range(0, 2000, 200):
            await asyncio.gather(*(store.put(f"k{i}", raw(i)) for i in range(start, start + 200)))
            assert {r.version for r in store.changes(0, 10_000)} == set(
                range(1, store.last_version() + 1)
            )
        stop = True
        await asyncio.wait_for(reader, timeout=10)
        assert checks[0] > 0 and store.last_version() == 2000
    finally:
        stop = True
        await store.close()


async def test_a_cancelled_caller_leaves_the_store_working(db: Path) -> None:
    store = SqliteStore.open(db, "n1", ManualClock(), new_epoch=lambda: "e")
    try:
        tasks = [asyncio.ensure_future(store.put(f"k{i}", raw(i))) for i in range(20)]
        await asyncio.sleep(0)  # every put is queued
        for t in tasks[::2]:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        row = await asyncio.wait_for(store.put("after", raw(1)), timeout=5)
        # cancelling stops the waiting, not the write: every queued put committed
        assert row.version == 21 and store.get("k0") is not None
    finally:
        await store.close()


async def test_a_batch_never_overwrites_a_later_row_even_when_the_counters_say_empty(
    db: Path,
) -> None:
    """The merge reads nothing on a store whose counters say it is empty; the statement itself
    still refuses to write over a later write: the batch fails whole, nothing changes."""
    store = SqliteStore.open(db, "n1", ManualClock(), new_epoch=lambda: "e1")
    try:
        later = remote("a", "later", T0 - 5)
        with sqlite3.connect(db) as side:  # behind the store's back: its counters stay 0
            side.execute(
                "INSERT INTO rows VALUES (?, ?, 0, 1, ?, ?)",
                ("a", b'"later"', later.hlc, later.origin),
            )
        with pytest.raises(ErrInternal):
            await store.replicate(ReplicateRequest("n2", "e2", 3, [remote("a", "old", T0 - 9)]))
        assert store.get("a") == Row("a", later.value, False, 1, later.hlc, "n2")
        assert store.last_version() == 0 and store.stats().applied == {}
    finally:
        await store.close()
