"""Random op sequences give identical answers and state on the memory and the SQLite store.

The SQLite store is also closed and reopened at random points: what survives must be everything.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_kit import T0, ManualClock, raw

from dtm.core.hlc import pack
from dtm.storage.base import Store
from dtm.storage.memory import MemoryStore
from dtm.storage.sqlite import SqliteStore
from dtm.wire import NULL, ReplicateRequest, Row, RowId

KEYS = ("a", "b", "c", "d", "e")


@dataclass(frozen=True)
class Put:
    key: str
    value: int
    seen: int


@dataclass(frozen=True)
class Delete:
    key: str
    seen: int


@dataclass(frozen=True)
class Replicate:
    source: str
    epoch: str
    upto: int
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Purge:
    keys: tuple[str, ...]  # purge the current tombstone of each (if any) and a stale id


@dataclass(frozen=True)
class Tick:
    ms: int


@dataclass(frozen=True)
class Reopen:
    pass


seen_hlc = st.one_of(st.just(0), st.integers(-2_000, 3_000).map(lambda d: pack(T0 + d)))
stamp = st.builds(lambda d, lg: pack(T0 + d, lg), st.integers(-1_000, 2_000), st.integers(0, 3))


@st.composite
def replicated_rows(draw: st.DrawFn) -> Row:
    deleted = draw(st.booleans())
    value = NULL if deleted else raw(draw(st.integers(0, 9)))
    origin = draw(st.sampled_from(("n0", "n2", "n3")))
    return Row(draw(st.sampled_from(KEYS)), value, deleted, 1, draw(stamp), origin)


ops = st.one_of(
    st.builds(Put, st.sampled_from(KEYS), st.integers(0, 9), seen_hlc),
    st.builds(Delete, st.sampled_from(KEYS), seen_hlc),
    st.builds(
        Replicate,
        st.sampled_from(("n2", "n3")),
        st.sampled_from(("x", "y")),
        st.integers(0, 50),
        st.lists(replicated_rows(), max_size=4).map(tuple),
    ),
    st.builds(Purge, st.lists(st.sampled_from(KEYS), max_size=3).map(tuple)),
    st.builds(Tick, st.integers(0, 40)),
    st.just(Reopen()),
)


async def apply(store: Store, op: Any, ids: list[RowId]) -> object:
    """Run one op; an error is an answer too (compared by type and message)."""
    try:
        if isinstance(op, Put):
            return await store.put(op.key, raw(op.value), op.seen)
        if isinstance(op, Delete):
            return await store.delete(op.key, op.seen)
        if isinstance(op, Replicate):
            return await store.replicate(
                ReplicateRequest(op.source, op.epoch, op.upto, list(op.rows))
            )
        if isinstance(op, Purge):
            return await store.purge(ids)
    except Exception as exc:
        return (type(exc).__name__, str(exc))
    return None


def observe(store: Store) -> tuple[object, ...]:
    """Everything a reader can see."""
    pages = []
    after: str | None = None
    while page := store.scan(after, 2):
        pages.append(page)
        after = page[-1].key
    feed = store.changes(0, 100)
    mid = feed[len(feed) // 2].version if feed else 0
    return (
        store.last_version(),
        store.stats(),
        {k: store.get(k) for k in KEYS},
        pages,
        feed,
        store.changes(mid, 2),
        store.digest(4),
        [store.bucket_rows(b, 4) for b in range(4)],
    )


async def run_both(program: list[Any], folder: Path) -> None:
    clock = ManualClock()
    path = folder / "n1.db"
    mem = MemoryStore("n1", "e1", clock)
    sql = SqliteStore.open(path, "n1", clock, new_epoch=lambda: "e1")
    try:
        for op in program:
            if isinstance(op, Tick):
                clock.advance(op.ms)
                continue
            if isinstance(op, Reopen):
                await sql.close()
                sql = SqliteStore.open(path, "n1", clock, new_epoch=lambda: "other")
                assert sql.epoch == "e1"
                continue
            ids: list[RowId] = []
            if isinstance(op, Purge):
                for k in op.keys:
                    row = mem.get(k)
                    if row is not None:
                        ids.append(RowId(k, row.hlc, row.origin))
                        ids.append(RowId(k, row.hlc - 1, row.origin))
            assert await apply(mem, op, ids) == await apply(sql, op, ids), op
            assert observe(mem) == observe(sql), op
    finally:
        await sql.close()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(ops, max_size=25))
def test_random_programs_behave_identically_on_both_backends(program: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run_both(program, Path(folder)))
