"""A node wiped before the sync learns its new epoch: the batches the sync planned for its old
epoch (the rows it knew that epoch held left out, ``applied`` moved over them) are refused, so the
empty node never claims a peer's feed it does not hold, and a session read it may serve shows the
session's writes."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from dtm.core import session
from dtm.core.syncstate import SyncEngine
from dtm.errors import ErrNotCaughtUp
from dtm.storage.memory import MemoryStore
from dtm.wire import ChangesPage, ReplicateRequest, SessionToken

NODES = ["a", "b"]
EA, EB, EB2 = "aa" * 8, "bb" * 8, "cc" * 8
NOW = 1_000_000


def _store(node: str, epoch: str) -> MemoryStore:
    return MemoryStore(node, epoch, lambda: NOW)


def _page(store: MemoryStore, since: int) -> ChangesPage:
    return ChangesPage(store.node, store.epoch, store.last_version(), store.changes(since, 100))


def _sync_a_to_b(eng: SyncEngine, a: MemoryStore, b: MemoryStore) -> None:
    """One round of the sync: read a's feed, deliver each batch to b (a refusal is a failed call,
    as the shell reports it), acknowledge what b took."""
    since = eng.plan_fetch("a", NODES)
    assert since is not None
    out = eng.on_page("a", since, 100, _page(a, since), NODES, NOW)
    for batch in out.batches:
        try:
            resp = asyncio.run(b.replicate(batch.request()))
        except ErrNotCaughtUp:
            continue
        eng.on_ack(batch, resp, NOW)


def _serves_its_writes(b: MemoryStore, token: SessionToken, wrote: list[str]) -> bool:
    """False only if b may serve the token (the session rule) yet lacks one of its writes."""
    if session.unmet(token, b.node, b.epoch, b.last_version(), b.stats().applied):
        return True
    return all(b.get(k) is not None for k in wrote)


def test_a_wiped_node_never_claims_a_feed_the_sync_planned_for_its_old_epoch() -> None:
    a, b = _store("a", EA), _store("b", EB)
    eng = SyncEngine(NODES)
    eng.learn_epoch("b", EB, 0)
    wrote = ["k1", "k2", "k3"]
    for k in wrote:
        asyncio.run(a.put(k, msgspec.Raw(b"1")))
    _sync_a_to_b(eng, a, b)
    assert all(b.get(k) is not None for k in wrote)

    # b loses its disk and restarts empty at a new epoch; the sync has not heard from it yet
    b = _store("b", EB2)
    asyncio.run(a.put("k4", msgspec.Raw(b"1")))
    token = SessionToken({"a": a.last_version()}, {"a": EA}, 0)
    _sync_a_to_b(eng, a, b)  # planned for b's old epoch: only k4, applied moved to 4
    assert _serves_its_writes(b, token, [*wrote, "k4"]), b.stats().applied

    # once the sync learns the new epoch it sends everything again, and b serves the session
    eng.learn_epoch("b", EB2, b.last_version())
    _sync_a_to_b(eng, a, b)
    assert not session.unmet(token, "b", EB2, b.last_version(), b.stats().applied)
    assert all(b.get(k) is not None for k in [*wrote, "k4"])


@pytest.mark.parametrize("target_epoch", [EB, None])
def test_a_store_takes_a_batch_for_its_own_epoch_or_a_repair(target_epoch: str | None) -> None:
    a, b = _store("a", EA), _store("b", EB)
    row = asyncio.run(a.put("k", msgspec.Raw(b"1")))
    resp = asyncio.run(b.replicate(ReplicateRequest("a", EA, 1, [row], target_epoch)))
    assert resp.applied == 1


def test_a_store_refuses_a_batch_for_another_epoch_and_records_nothing() -> None:
    a, b = _store("a", EA), _store("b", EB2)
    row = asyncio.run(a.put("k", msgspec.Raw(b"1")))
    with pytest.raises(ErrNotCaughtUp, match="planned for epoch"):
        asyncio.run(b.replicate(ReplicateRequest("a", EA, 1, [], EB)))
    assert "a" not in b.stats().applied and b.get(row.key) is None
