"""The write rules a store executes: stamping, versions, the no-op apply."""

from __future__ import annotations

import msgspec
import pytest

from dtm.core.hlc import HLC, pack
from dtm.core.order import Outcome
from dtm.core.writes import (
    StoreState,
    TooFarAhead,
    Unchanged,
    Written,
    advance_applied,
    applied_through,
    apply_replicated,
    local_delete,
    local_put,
)
from dtm.errors import ErrNoDataFound, ErrSyntaxInvalidArgs
from dtm.wire import NULL, PeerApplied, Row

NOW = 1_790_000_000_000
V = msgspec.Raw(b'"v"')


def fresh(version: int = 0, last: int = 0) -> StoreState:
    return StoreState("store1", version, HLC(last))


def test_a_local_put_is_stamped_by_this_node_with_the_next_version() -> None:
    w = local_put(fresh(7), "k", V, NOW)
    assert isinstance(w, Written)
    assert w.row == Row("k", V, False, 8, pack(NOW), "store1")
    assert w.state.last_version == 8 and w.state.clock.last == pack(NOW)


def test_a_put_observes_the_callers_stamp_first() -> None:
    seen = pack(NOW + 400, 9)  # the caller wrote through a node whose clock is 400 ms ahead
    w = local_put(fresh(), "k", V, NOW, seen_hlc=seen)
    assert isinstance(w, Written) and w.row.hlc > seen and w.state.clock.last == w.row.hlc


@pytest.mark.parametrize("ahead_ms", [501, 3_600_000, 10**12])
def test_a_client_stamp_beyond_the_max_offset_is_refused_never_merged(ahead_ms: int) -> None:
    seen = pack(NOW + ahead_ms)
    w = local_put(fresh(), "k", V, NOW, seen_hlc=seen)
    assert w == TooFarAhead(seen, ahead_ms, 500)
    assert isinstance(w.error(), ErrSyntaxInvalidArgs) and "X-Dtm-Hlc" in w.error().message
    cur = Row("k", V, False, 1, pack(NOW - 5), "store2")
    assert isinstance(local_delete(fresh(1), cur, "k", NOW, seen_hlc=seen), TooFarAhead)


@pytest.mark.parametrize("hlc", [2**63 - 1, pack(NOW + 501)])
def test_a_replicated_row_too_far_ahead_is_held_not_merged_nor_stored(hlc: int) -> None:
    res = apply_replicated(fresh(4, pack(NOW)), None, Row("k", V, False, 9, hlc, "store2"), NOW)
    assert isinstance(res, TooFarAhead) and res.stamp == hlc


def test_a_batch_with_a_held_row_claims_nothing() -> None:
    assert applied_through(40, []) == 40
    # the held row may supersede a write below it that the batch does not carry
    assert applied_through(40, [33, 31]) == 0
    assert applied_through(0, [7]) == 0  # a repair batch claims nothing either way


def test_deleting_an_absent_or_deleted_key_is_not_found_and_changes_nothing() -> None:
    s = fresh(3)
    assert isinstance(local_delete(s, None, "k", NOW), ErrNoDataFound)
    tomb = Row("k", NULL, True, 3, 1, "store2")
    assert isinstance(local_delete(s, tomb, "k", NOW), ErrNoDataFound)


def test_a_delete_is_a_tombstone_stamped_like_a_put() -> None:
    cur = Row("k", V, False, 1, pack(NOW - 5), "store2")
    w = local_delete(fresh(1, pack(NOW - 5)), cur, "k", NOW)
    assert isinstance(w, Written)
    assert w.row.deleted and w.row.value == NULL and w.row.version == 2
    assert (w.row.hlc, w.row.origin) == (pack(NOW), "store1")


def test_a_replicated_winner_keeps_its_identity_and_value_and_gets_a_local_version() -> None:
    incoming = Row("k", msgspec.Raw(b'{"a":1}'), False, 99, pack(NOW + 10), "store2")
    res = apply_replicated(fresh(4), None, incoming, NOW)
    assert isinstance(res, Written)
    assert res.row == Row("k", incoming.value, False, 5, incoming.hlc, "store2")


@pytest.mark.parametrize("incoming_hlc, outcome", [(5, Outcome.SAME), (4, Outcome.LOSE)])
def test_a_replicated_loser_or_duplicate_bumps_nothing(incoming_hlc: int, outcome: Outcome) -> None:
    local = Row("k", V, False, 10, 5, "store2")
    res = apply_replicated(fresh(10, 5), local, Row("k", V, False, 3, incoming_hlc, "store2"), NOW)
    assert isinstance(res, Unchanged) and res.outcome is outcome
    assert res.state.last_version == 10


def test_a_replicated_stamp_is_observed_even_when_it_loses() -> None:
    local = Row("k", V, False, 1, pack(NOW + 100), "store3")
    res = apply_replicated(fresh(1), local, Row("k", V, False, 1, pack(NOW + 50), "store2"), NOW)
    assert isinstance(res, Unchanged) and res.state.clock.last >= pack(NOW + 50)


def test_applied_versions_only_grow_within_an_epoch_and_restart_with_a_new_one() -> None:
    a = advance_applied(None, "e1", 5)
    assert advance_applied(a, "e1", 3) == PeerApplied("e1", 5)
    assert advance_applied(a, "e1", 9) == PeerApplied("e1", 9)
    assert advance_applied(a, "e2", 1) == PeerApplied("e2", 1)
