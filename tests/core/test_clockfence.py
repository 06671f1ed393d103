"""The write fence: a node whose clock is beyond the max offset from most of its peers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dtm.core.clockfence import far_peers, fenced, offset_ms, sample

MAX = 500
offsets = st.dictionaries(
    st.sampled_from(["store2", "store3", "balancer", "handler", "sync"]),
    st.integers(-100_000, 100_000),
)


def test_the_offset_is_measured_at_the_middle_of_the_round_trip() -> None:
    assert offset_ms(1_000, 1_010, 31_005) == 30_000
    assert sample(1_000, 1_010, 31_005, MAX) == 30_000
    assert sample(1_000, 1_000 + MAX + 1, 31_005, MAX) is None  # too slow to tell
    assert sample(1_000, 999, 31_005, MAX) is None  # our clock stepped back meanwhile
    assert sample(1_000, 1_010, 0, MAX) is None  # a peer that reports no clock


def test_a_fast_node_is_fenced_its_peers_are_not() -> None:
    # store1 30 s fast: it sees every peer 30 s behind; store2 sees only store1 off.
    assert fenced({"store2": -30_000, "sync": -30_001, "handler": -29_999}, MAX)
    assert not fenced({"store1": 30_000, "sync": 1, "handler": -2}, MAX)


def test_two_nodes_alone_are_a_tie_and_the_other_components_break_it() -> None:
    assert not fenced({"store2": -30_000}, MAX)
    assert not fenced({"store1": 30_000}, MAX)
    assert fenced({"store2": -30_000, "sync": -30_000}, MAX)
    assert not fenced({"store1": 30_000, "sync": 0}, MAX)


@given(offsets)
def test_fenced_iff_a_strict_majority_of_at_least_two_answers_is_beyond_the_max_offset(
    offs: dict[str, int],
) -> None:
    far = far_peers(offs, MAX)
    assert set(far) == {p for p, o in offs.items() if abs(o) > MAX}
    assert fenced(offs, MAX) == (len(offs) >= 2 and len(far) > len(offs) - len(far))


@given(offsets)
def test_only_the_odd_one_out_is_fenced(offs: dict[str, int]) -> None:
    """Peers within the max offset of each other never fence the node that agrees with them."""
    near = {p: (o % (2 * MAX + 1)) - MAX for p, o in offs.items()}  # all within MAX of us
    assert not fenced(near, MAX)
    shifted = {p: o - 10 * MAX for p, o in near.items()}  # we are 5 s fast against all of them
    assert fenced(shifted, MAX) == (len(near) >= 2)
