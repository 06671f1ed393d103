"""The storage contract: every test here runs against the memory and the SQLite store alike."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from store_kit import T0, ManualClock, StoreFactory, raw, remote

from dtm.core.digest import bucket_of, digest
from dtm.core.hlc import pack, physical_ms
from dtm.errors import ErrNoDataFound, ErrSyntaxInvalidArgs
from dtm.storage.base import Store
from dtm.wire import NULL, PeerApplied, ReplicateRequest, Row, RowId


def batch(
    rows: list[Row], source: str = "n2", epoch: str = "e2", upto: int = 0
) -> ReplicateRequest:
    return ReplicateRequest(source, epoch, upto or len(rows), rows)


def ident(r: Row) -> tuple[str, int, str, bool, bytes]:
    """A row without its node-local version: what must be equal across replicas."""
    return (r.key, r.hlc, r.origin, r.deleted, bytes(r.value))


# ---------------------------------------------------------------- local writes and reads


async def test_put_get_roundtrip(store: Store) -> None:
    row = await store.put("a", raw({"text": "milk", "n": 1}))
    assert (row.key, row.deleted, row.version, row.origin) == ("a", False, 1, "n1")
    assert row.hlc == pack(T0)
    assert bytes(row.value) == b'{"text":"milk","n":1}'
    assert store.get("a") == row
    assert store.get("b") is None
    assert store.last_version() == 1
    assert store.node == "n1" and store.epoch == "e1"


async def test_overwrite_keeps_one_row_with_a_new_version(store: Store) -> None:
    await store.put("a", raw(1))
    second = await store.put("a", raw(2))
    assert second.version == 2 and bytes(second.value) == b"2"
    assert store.get("a") == second
    assert store.changes(0, 10) == [second]
    assert (store.stats().live_rows, store.stats().tombstones) == (1, 0)


async def test_scan_pages_live_rows_in_key_order(store: Store) -> None:
    keys = [f"k{i:02d}" for i in range(25)]
    for k in reversed(keys):
        await store.put(k, raw(k))
    await store.delete("k03")
    await store.delete("k20")
    live = [k for k in keys if k not in ("k03", "k20")]
    seen: list[str] = []
    after: str | None = None
    while True:
        page = store.scan(after, 7)
        assert len(page) <= 7
        seen += [r.key for r in page]
        if len(page) < 7:
            break
        after = page[-1].key
    assert seen == live
    assert [r.key for r in store.scan("k10", 3)] == ["k11", "k12", "k13"]
    assert store.scan(None, 0) == [] and store.scan("zzz", 5) == []


async def test_delete_leaves_a_tombstone(store: Store) -> None:
    put = await store.put("a", raw("x"))
    dead = await store.delete("a")
    assert dead.deleted and dead.value == NULL and dead.version == put.version + 1
    assert dead.hlc > put.hlc and dead.origin == "n1"
    assert store.get("a") == dead
    assert store.scan(None, 10) == []
    assert (store.stats().live_rows, store.stats().tombstones) == (0, 1)
    again = await store.put("a", raw("y"))
    assert again.version == 3 and not again.deleted
    assert (store.stats().live_rows, store.stats().tombstones) == (1, 0)


async def test_delete_of_absent_or_deleted_key_is_not_found_and_changes_nothing(
    store: Store,
) -> None:
    with pytest.raises(ErrNoDataFound):
        await store.delete("never")
    await store.put("a", raw(1))
    await store.delete("a")
    before = (store.last_version(), store.stats(), store.changes(0, 100))
    with pytest.raises(ErrNoDataFound):
        await store.delete("a")
    assert (store.last_version(), store.stats(), store.changes(0, 100)) == before


async def test_not_found_does_not_leak_a_lock(store: Store) -> None:
    async def miss(i: int) -> None:
        with pytest.raises(ErrNoDataFound):
            await store.delete(f"absent{i}")

    async def hit(i: int) -> Row:
        return await store.put(f"k{i}", raw(i))

    jobs = [miss(i) if i % 2 else hit(i) for i in range(60)]
    await asyncio.wait_for(asyncio.gather(*jobs), timeout=10)
    row = await asyncio.wait_for(store.put("after", raw("ok")), timeout=5)
    assert row.version == 31 and store.last_version() == 31


async def test_versions_rise_by_one_per_changing_write(store: Store, clock: ManualClock) -> None:
    versions = []
    for i in range(10):
        versions.append((await store.put(f"k{i % 4}", raw(i))).version)
        clock.advance(1)
    versions.append((await store.delete("k1")).version)
    assert versions == list(range(1, 12))
    assert store.last_version() == 11


async def test_concurrent_writes_get_distinct_gapless_versions(store: Store) -> None:
    rows = await asyncio.gather(*(store.put(f"k{i}", raw(i)) for i in range(100)))
    assert sorted(r.version for r in rows) == list(range(1, 101))
    assert len({r.hlc for r in rows}) == 100
    assert [r.version for r in store.changes(0, 1000)] == list(range(1, 101))


async def test_changes_order_limit_tombstones_and_each_key_once(store: Store) -> None:
    for k in ("a", "b", "c", "d"):
        await store.put(k, raw(k))
    await store.put("b", raw("b2"))  # b moves to version 5
    await store.delete("a")  # a moves to version 6
    feed = store.changes(0, 100)
    assert [(r.key, r.version) for r in feed] == [("c", 3), ("d", 4), ("b", 5), ("a", 6)]
    assert feed[-1].deleted
    assert store.changes(0, 2) == feed[:2]
    assert store.changes(4, 100) == feed[2:]
    assert store.changes(6, 100) == [] and store.changes(0, 0) == []
    assert len({r.key for r in feed}) == len(feed)


# ---------------------------------------------------------------- clocks


async def test_seen_hlc_is_observed_within_the_max_offset_and_refused_beyond(store: Store) -> None:
    near = pack(T0 + 200)  # ahead, but within the 500 ms max offset
    row = await store.put("a", raw(1), seen_hlc=near)
    assert row.hlc > near and store.stats().skew_events == 0
    far = pack(T0 + 60_000)
    with pytest.raises(ErrSyntaxInvalidArgs):
        await store.put("b", raw(1), seen_hlc=far)
    assert store.get("b") is None and store.stats().skew_events == 1
    with pytest.raises(ErrSyntaxInvalidArgs):
        await store.delete("a", seen_hlc=far + 100)
    assert store.stats().skew_events == 2 and store.stats().hlc == row.hlc
    dead = await store.delete("a", seen_hlc=near + 1)
    assert dead.hlc > near + 1 and store.stats().hlc == dead.hlc


# ---------------------------------------------------------------- replication


async def test_replicated_winner_is_stored_verbatim(store: Store) -> None:
    theirs = Row("a", msgspec.Raw(b'{ "spaced" : 1 }'), False, 77, pack(T0 - 10, 3), "n2")
    res = await store.replicate(batch([theirs], upto=77))
    assert (res.applied, res.ignored, res.last_version, res.losers) == (1, 0, 1, [])
    got = store.get("a")
    assert got is not None
    assert (got.hlc, got.origin, got.version, got.deleted) == (theirs.hlc, "n2", 1, False)
    assert bytes(got.value) == b'{ "spaced" : 1 }'


async def test_replicated_tombstone_and_overwrite(store: Store) -> None:
    await store.put("a", raw(1))
    res = await store.replicate(batch([remote("a", None, T0 + 5, deleted=True)]))
    assert res.applied == 1
    got = store.get("a")
    assert got is not None and got.deleted and got.value == NULL and got.origin == "n2"
    await store.replicate(batch([remote("fresh", None, T0, deleted=True)]))
    assert (store.stats().live_rows, store.stats().tombstones) == (0, 2)


async def test_loser_and_duplicate_are_ignored_without_a_version_bump(store: Store) -> None:
    mine = await store.put("a", raw("mine"))
    older = remote("a", "old", T0 - 1_000)
    winner = remote("b", "theirs", T0 - 1_000)
    res = await store.replicate(batch([older, winner]))
    assert (res.applied, res.ignored, res.losers) == (1, 1, [older])
    assert store.get("a") == mine
    v = store.last_version()
    again = await store.replicate(batch([winner, older, winner]))
    assert (again.applied, again.ignored, again.last_version) == (0, 3, v)
    assert again.losers == [older]
    assert store.last_version() == v
    # the same write from its origin (a tie on the stamp loses only to a greater origin)
    tie = Row("a", raw("tie"), False, 9, mine.hlc, "n0")
    assert (await store.replicate(batch([tie]))).ignored == 1
    assert store.get("a") == mine and store.last_version() == v


async def test_a_batch_applies_rows_in_order_within_itself(store: Store) -> None:
    rows = [remote("a", 1, T0), remote("a", 2, T0 + 1), remote("a", 0, T0 - 1)]
    res = await store.replicate(batch(rows))
    assert (res.applied, res.ignored, res.last_version) == (2, 1, 2)
    got = store.get("a")
    assert got is not None and bytes(got.value) == b"2" and got.version == 2


async def test_a_large_batch_merges_each_key_against_the_stored_row(store: Store) -> None:
    n = 1200  # more keys than one read of the stored rows takes
    first = [remote(f"k{i:04}", i, T0 - 100, version=i + 1) for i in range(n)]
    assert (await store.replicate(batch(first))).applied == n
    again = [remote(f"k{i:04}", -i, T0 - 100 + (1 if i % 2 else -1)) for i in range(n)]
    res = await store.replicate(batch(again))
    assert (res.applied, res.ignored, res.last_version) == (n // 2, n // 2, n + n // 2)
    assert res.losers == again[0::2]
    feed = store.changes(n, n)
    assert [r.key for r in feed] == [r.key for r in again[1::2]]
    assert [r.version for r in feed] == list(range(n + 1, n + n // 2 + 1))
    assert (store.stats().live_rows, store.stats().tombstones) == (n, 0)


async def test_local_write_orders_after_a_replicated_stamp_within_the_max_offset(
    store: Store,
) -> None:
    ahead = remote("a", "ahead", T0 + 400)
    await store.replicate(batch([ahead]))
    mine = await store.put("a", raw("mine"))
    assert mine.hlc > ahead.hlc and physical_ms(mine.hlc) == T0 + 400
    assert store.get("a") == mine and store.stats().skew_events == 0
    # a losing row is still observed
    await store.replicate(batch([remote("b", 1, T0 + 450), remote("b", 0, T0 + 420)]))
    assert (await store.put("c", raw(1))).hlc > pack(T0 + 450)


@pytest.mark.parametrize("hlc", [2**63 - 1, pack(T0 + 501)])
async def test_a_replicated_row_too_far_ahead_is_held_back_then_applied_when_clocks_allow(
    store: Store, clock: ManualClock, hlc: int
) -> None:
    ok1, far, ok2 = remote("a", 1, T0), Row("b", raw(2), False, 2, hlc, "n2"), remote("c", 3, T0)
    rows = [Row(r.key, r.value, r.deleted, v, r.hlc, r.origin) for v, r in ((1, ok1), (3, ok2))]
    res = await store.replicate(batch([rows[0], far, rows[1]], upto=3))
    assert (res.applied, res.held_from) == (2, 2)
    assert store.get("b") is None and store.stats().skew_events == 1
    assert store.stats().hlc == pack(T0)  # the admitted rows' stamp, not the held one
    # nothing claimed: the held row may supersede a write below it that the batch lacks
    assert store.stats().applied == {"n2": PeerApplied("e2", 0)}
    if hlc == pack(T0 + 501):
        clock.now += 1  # now the row is within the max offset: delivered again, it is applied
        again = await store.replicate(batch([far, rows[1]], upto=3))
        assert (again.applied, again.held_from) == (1, 0)
        assert store.get("b") is not None and store.stats().hlc == hlc
        assert store.stats().applied == {"n2": PeerApplied("e2", 3)}


async def test_applied_bookkeeping_per_source_and_epoch(store: Store) -> None:
    assert store.stats().applied == {}
    await store.replicate(batch([remote("a", 1, T0)], source="n2", epoch="x", upto=10))
    await store.replicate(batch([], source="n3", epoch="y", upto=4))
    assert store.stats().applied == {"n2": PeerApplied("x", 10), "n3": PeerApplied("y", 4)}
    await store.replicate(batch([], source="n2", epoch="x", upto=5))  # a stale batch
    assert store.stats().applied["n2"] == PeerApplied("x", 10)
    await store.replicate(batch([], source="n2", epoch="z", upto=3))  # n2 was wiped
    assert store.stats().applied["n2"] == PeerApplied("z", 3)
    assert store.last_version() == 1


# ---------------------------------------------------------------- purge


async def test_purge_removes_only_exact_tombstones(store: Store) -> None:
    live = await store.put("live", raw(1))
    await store.put("a", raw(1))
    dead = await store.delete("a")
    await store.put("b", raw(1))
    dead_b = await store.delete("b")
    v = store.last_version()
    ids = [
        RowId("live", live.hlc, "n1"),  # a live row is never purged
        RowId("a", dead.hlc, "n2"),  # wrong origin
        RowId("a", dead.hlc - 1, "n1"),  # wrong stamp
        RowId("absent", dead.hlc, "n1"),
        RowId("b", dead_b.hlc, "n1"),  # exact
        RowId("b", dead_b.hlc, "n1"),  # twice
    ]
    assert await store.purge(ids) == 1
    assert store.get("b") is None and store.get("a") == dead and store.get("live") is not None
    assert store.last_version() == v
    assert [r.key for r in store.changes(0, 100)] == ["live", "a"]
    assert (store.stats().live_rows, store.stats().tombstones) == (1, 1)
    assert await store.purge([]) == 0
    # a key re-created after its tombstone was named is not purged
    await store.put("a", raw(2))
    assert await store.purge([RowId("a", dead.hlc, "n1")]) == 0
    assert store.get("a") is not None


# ---------------------------------------------------------------- digests


async def test_digest_is_equal_for_equal_rows_whatever_the_order(
    make_store: StoreFactory,
) -> None:
    rows = [remote(f"k{i}", i, T0 + i, origin=f"n{i % 3 + 2}") for i in range(40)]
    rows += [remote("k5", None, T0 + 100, deleted=True), remote("k7", "late", T0 + 200)]
    one, two, other = await make_store("a"), await make_store("b"), await make_store("c")
    await one.replicate(batch(rows))
    for r in reversed(rows):
        await two.replicate(batch([r, r]))
    await other.replicate(batch(rows[:-1]))
    assert one.digest(16) == two.digest(16) != other.digest(16)
    assert one.digest(16) == digest(one.changes(0, 1000), 16)
    assert one.last_version() == 42 and two.last_version() != one.last_version()
    for b in range(16):
        mine = one.bucket_rows(b, 16)
        assert mine == sorted(
            (r for r in one.changes(0, 1000) if bucket_of(r.key, 16) == b), key=lambda r: r.key
        )
        assert [ident(r) for r in mine] == [ident(r) for r in two.bucket_rows(b, 16)]
    assert sum(len(one.bucket_rows(b, 16)) for b in range(16)) == 40


async def test_empty_store(store: Store) -> None:
    assert store.last_version() == 0
    assert store.changes(0, 10) == [] and store.scan(None, 10) == []
    assert store.digest(4) == ["0" * 16] * 4
    s = store.stats()
    assert (s.live_rows, s.tombstones, s.hlc, s.skew_events, s.applied) == (0, 0, 0, 0, {})


# ---------------------------------------------------------------- pages capped by bytes


async def test_scan_and_changes_stop_a_page_at_the_byte_budget(store: Store) -> None:
    from dtm.storage.base import page_is_full, row_bytes

    big = raw("x" * 5000)
    for i in range(20):
        await store.put(f"b{i:02d}", big)
    one = row_bytes(store.scan(None, 1)[0])
    budget = 3 * one + 1  # the 4th row reaches the budget: 4 rows a page
    page = store.scan(None, 100, budget)
    assert [r.key for r in page] == ["b00", "b01", "b02", "b03"] and page_is_full(page, budget)
    feed = store.changes(0, 100, budget)
    assert [r.version for r in feed] == [1, 2, 3, 4] and page_is_full(feed, budget)
    # The row limit still applies, and a budget below one row still gives one row.
    assert len(store.scan(None, 2, budget)) == 2
    assert len(store.scan(None, 100, 1)) == 1 and len(store.changes(0, 100, 1)) == 1
    assert not page_is_full(store.scan("b17", 100, budget), budget)  # the last 2 rows


async def test_paging_by_bytes_reaches_every_row_once(store: Store) -> None:
    from dtm.storage.base import page_is_full

    keys = [f"p{i:03d}" for i in range(60)]
    for i, k in enumerate(keys):
        await store.put(k, raw("y" * (i * 97 % 3000)))
    await store.delete("p007")
    budget = 8000
    seen: list[str] = []
    after: str | None = None
    while True:
        page = store.scan(after, 50, budget)
        seen += [r.key for r in page]
        if len(page) < 50 and not page_is_full(page, budget):
            break
        after = page[-1].key
    assert seen == [k for k in keys if k != "p007"]
    versions: list[int] = []
    since = 0
    while page := store.changes(since, 50, budget):
        versions += [r.version for r in page]
        since = page[-1].version
    assert versions == sorted(r.version for r in store.changes(0, 1000))
