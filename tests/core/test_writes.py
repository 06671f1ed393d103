"""The write rules a store executes: stamping, versions, the no-op apply."""

from __future__ import annotations

import msgspec
import pytest

from dtm.core.hlc import HLC, pack
from dtm.core.order import Outcome
from dtm.core.writes import (
    StoreState,
    Unchanged,
    Written,
    advance_applied,
    apply_replicated,
    local_delete,
    local_put,
)
from dtm.errors import ErrNoDataFound
from dtm.wire import NULL, PeerApplied, Row

NOW = 1_790_000_000_000
V = msgspec.Raw(b'"v"')


def fresh(version: int = 0, last: int = 0) -> StoreState:
    return StoreState("store1", version, HLC(last))


def test_a_local_put_is_stamped_by_this_node_with_the_next_version() -> None:
    w = local_put(fresh(7), "k", V, NOW)
    assert w.row == Row("k", V, False, 8, pack(NOW), "store1")
    assert w.state.last_version == 8 and w.state.clock.last == pack(NOW)


def test_a_put_observes_the_callers_stamp_first() -> None:
    seen = pack(NOW + 3_600_000)  # the caller wrote through a node whose clock is an hour ahead
    w = local_put(fresh(), "k", V, NOW, seen_hlc=seen)
    assert w.row.hlc > seen and w.skewed and w.skew_ms == 3_600_000


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
    assert res.state.clock.last >= pack(NOW + 50)


def test_applied_versions_only_grow_within_an_epoch_and_restart_with_a_new_one() -> None:
    a = advance_applied(None, "e1", 5)
    assert advance_applied(a, "e1", 3) == PeerApplied("e1", 5)
    assert advance_applied(a, "e1", 9) == PeerApplied("e1", 9)
    assert advance_applied(a, "e2", 1) == PeerApplied("e2", 1)
