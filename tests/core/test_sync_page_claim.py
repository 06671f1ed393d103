"""A full page claims nothing of its source's feed: a feed keeps each key's newest version only, so
a write at or below a full page's last row that was overwritten above it is not in the page, and a
target recording the feed through that row would serve sessions without the write. A page that
ends the feed (and the empty batch owed after it) claims it all."""

from __future__ import annotations

import asyncio

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from dtm.core import session
from dtm.core.syncstate import SyncEngine
from dtm.storage.memory import MemoryStore
from dtm.wire import ChangesPage, SessionToken

NODES = ["a", "b"]
EA, EB = "aa" * 8, "bb" * 8
NOW = 1_000_000


def _round(eng: SyncEngine, a: MemoryStore, b: MemoryStore, limit: int) -> None:
    """One page of a's feed read from b's cursor and delivered to b (plus any empty batch owed)."""
    since = eng.plan_fetch("a", NODES)
    assert since is not None
    page = ChangesPage("a", EA, a.last_version(), a.changes(since, limit))
    for batch in eng.on_page("a", since, limit, page, NODES, NOW).batches:
        if not batch.rows:
            eng.settle(batch, NOW)
            continue
        eng.on_ack(batch, asyncio.run(b.replicate(batch.request())), NOW)
    for pair in list(eng.owed_applied):
        owed = eng.applied_batch(pair)
        if owed is not None and pair == ("a", "b"):
            eng.on_ack(owed, asyncio.run(b.replicate(owed.request())), NOW)


def _stale(b: MemoryStore, token: SessionToken, wrote: dict[str, int]) -> list[str]:
    """The session's writes b lacks although the session rule lets it serve the token."""
    if session.unmet(token, "b", EB, b.last_version(), b.stats().applied):
        return []
    return [k for k, hlc in wrote.items() if (r := b.get(k)) is None or r.hlc < hlc]


def test_a_full_page_does_not_claim_a_write_overwritten_beyond_it() -> None:
    a, b = MemoryStore("a", EA, lambda: NOW), MemoryStore("b", EB, lambda: NOW)
    eng = SyncEngine(NODES)
    eng.learn_epoch("b", EB, 0)
    mine = asyncio.run(a.put("k1", msgspec.Raw(b"1")))  # the session's write, version 1
    for k in ("k2", "k3"):
        asyncio.run(a.put(k, msgspec.Raw(b"1")))
    asyncio.run(a.put("k1", msgspec.Raw(b"2")))  # someone overwrites it: k1 is now at version 4
    token = SessionToken({"a": mine.version}, {"a": EA}, 0)
    _round(eng, a, b, limit=2)  # a full page: k2@2, k3@3
    assert b.get("k2") is not None and b.get("k1") is None
    assert _stale(b, token, {"k1": mine.hlc}) == [], b.stats().applied
    _round(eng, a, b, limit=2)  # the rest of the feed: k1@4
    assert not session.unmet(token, "b", EB, b.last_version(), b.stats().applied)
    assert _stale(b, token, {"k1": mine.hlc}) == []


@settings(max_examples=60, deadline=None)
@given(
    writes=st.lists(st.sampled_from(["k1", "k2", "k3", "k4", "k5"]), min_size=1, max_size=25),
    limit=st.integers(1, 4),
    rounds_between=st.lists(st.integers(0, 2), min_size=25, max_size=25),
)
def test_no_page_lets_a_target_serve_a_session_without_its_writes(
    writes: list[str], limit: int, rounds_between: list[int]
) -> None:
    """Writes to a, pages of its feed delivered to b in between: whenever the session rule lets b
    serve a session that made some of the writes, b holds each of them or a later write."""
    a, b = MemoryStore("a", EA, lambda: NOW), MemoryStore("b", EB, lambda: NOW)
    eng = SyncEngine(NODES)
    eng.learn_epoch("b", EB, 0)
    wrote: dict[str, int] = {}
    token = SessionToken({}, {}, 0)
    for i, k in enumerate(writes):
        row = asyncio.run(a.put(k, msgspec.Raw(b"1")))
        if i % 2 == 0:  # every other write is the session's
            wrote[k] = row.hlc
            token = SessionToken({"a": row.version}, {"a": EA}, 0)
        for _ in range(rounds_between[i]):
            _round(eng, a, b, limit)
            assert _stale(b, token, wrote) == [], (b.stats().applied, token)
    for _ in range(len(writes) + 1):
        _round(eng, a, b, limit)
    assert _stale(b, token, wrote) == []
    assert not session.unmet(token, "b", EB, b.last_version(), b.stats().applied)


def test_a_page_cut_by_bytes_claims_nothing_either() -> None:
    """A page the node cut at its byte cap has fewer rows than asked but says ``more``: its batch
    claims nothing (the write overwritten beyond it is not held), the page that ends the feed
    claims it all."""
    a, b = MemoryStore("a", EA, lambda: NOW), MemoryStore("b", EB, lambda: NOW)
    eng = SyncEngine(NODES)
    eng.learn_epoch("b", EB, 0)
    mine = asyncio.run(a.put("k1", msgspec.Raw(b"1")))
    for k in ("k2", "k3"):
        asyncio.run(a.put(k, msgspec.Raw(b"1")))
    asyncio.run(a.put("k1", msgspec.Raw(b"2")))
    token = SessionToken({"a": mine.version}, {"a": EA}, 0)
    rows = a.changes(0, 2)  # as if the byte cap stopped the page after k2@2, k3@3
    page = ChangesPage("a", EA, rows[-1].version, rows, more=True)
    (batch,) = eng.on_page("a", 0, 100, page, NODES, NOW).batches
    assert batch.request().source_version == 0
    eng.on_ack(batch, asyncio.run(b.replicate(batch.request())), NOW)
    assert eng.applied_batch(("a", "b")) is None
    assert _stale(b, token, {"k1": mine.hlc}) == [], b.stats().applied
    _round(eng, a, b, limit=100)  # the rest of the feed: k1@4, and the claim
    assert not session.unmet(token, "b", EB, b.last_version(), b.stats().applied)
    assert _stale(b, token, {"k1": mine.hlc}) == []


def test_a_batch_with_a_row_held_back_claims_nothing() -> None:
    """A row held back (stamped beyond the target's clock) may supersede the session's write
    below it: the target claims nothing of the batch until the row is admitted."""
    a_now, b_now = [NOW], [NOW]
    a = MemoryStore("a", EA, lambda: a_now[0])
    b = MemoryStore("b", EB, lambda: b_now[0])
    eng = SyncEngine(NODES)
    eng.learn_epoch("b", EB, 0)
    mine = asyncio.run(a.put("k1", msgspec.Raw(b"1")))  # the session's write, version 1
    asyncio.run(a.put("k2", msgspec.Raw(b"1")))
    a_now[0] = NOW + 10_000  # a's clock runs far ahead of b's
    asyncio.run(a.put("k1", msgspec.Raw(b"2")))  # version 3: b holds it back
    token = SessionToken({"a": mine.version}, {"a": EA}, 0)
    _round(eng, a, b, limit=100)
    assert b.get("k2") is not None and b.get("k1") is None
    assert _stale(b, token, {"k1": mine.hlc}) == [], b.stats().applied
    b_now[0] = NOW + 10_000  # b's clock admits it now: delivered again, it is applied
    _round(eng, a, b, limit=100)
    assert not session.unmet(token, "b", EB, b.last_version(), b.stats().applied)
    assert _stale(b, token, {"k1": mine.hlc}) == []
