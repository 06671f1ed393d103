"""The handler's pushed copy of a write (dtm.core.copyplan) against both stores: it is merged like
any replicated row, never re-stamped, and moves no record of how far the source's feed is applied;
the sync's later delivery of the same row is a no-op."""

from __future__ import annotations

from store_kit import T0, StoreFactory, remote

from dtm.core.copyplan import copy_of
from dtm.wire import PeerApplied, ReplicateRequest


async def test_a_pushed_copy_is_stored_as_is_and_claims_nothing(make_store: StoreFactory) -> None:
    target = await make_store(node="n1")
    row = remote("k", {"a": 1}, T0, origin="n2", version=9)
    res = await target.replicate(copy_of(row, "e2"))
    assert (res.applied, res.ignored, res.held_from) == (1, 0, 0)
    got = target.get("k")
    assert got is not None
    assert (got.value, got.deleted, got.hlc, got.origin) == (row.value, False, row.hlc, "n2")
    assert got.version == target.last_version() == 1  # the target's own version
    # Applied through 0 of n2's feed: no claim (a session entry n2@9 is not met here).
    assert target.stats().applied.get("n2", PeerApplied("e2", 0)) == PeerApplied("e2", 0)

    # Pushed again (another handler's copy, a retry): nothing moves.
    again = await target.replicate(copy_of(row, "e2"))
    assert (again.applied, again.ignored, again.last_version) == (0, 1, 1)

    # The sync then delivers n2's feed through 9, the row included: a no-op but for the claim.
    feed = ReplicateRequest("n2", "e2", 9, [row], "e1")
    synced = await target.replicate(feed)
    assert (synced.applied, synced.ignored, synced.last_version) == (0, 1, 1)
    assert target.stats().applied["n2"] == PeerApplied("e2", 9)

    # A copy pushed after that leaves the sync's record where it is.
    newer = remote("k2", {"b": 2}, T0 + 1, origin="n2", version=10)
    await target.replicate(copy_of(newer, "e2"))
    assert target.stats().applied["n2"] == PeerApplied("e2", 9)
