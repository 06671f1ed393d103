"""The deadline rules: a client write is never stamped past its deadline, and a retry that waits
out the first copy's deadline (plus the max clock offset) and carries its ceiling as a stamp
floor orders after any late copy of the first attempt, and so does every later write."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from dtm.core import deadline
from dtm.core.deadline import ceiling, retry_after_ms, retry_floor, stamp_too_late, too_late
from dtm.core.hlc import HLC, pack, physical_ms
from dtm.core.writes import Late, StoreState, TooFarAhead, Written, local_delete, local_put
from dtm.errors import ErrTimeout
from dtm.wire import Row

VALUE = msgspec.Raw(b"1")
T0 = 1_700_000_000_000
OFFSET = 500


def test_the_rules_at_their_edges() -> None:
    assert not too_late(0, 10**13, 0) and not stamp_too_late(pack(10**12), 0)  # 0: no deadline
    assert not stamp_too_late(pack(T0, 65535), T0)
    assert stamp_too_late(pack(T0 + 1), T0)
    assert ceiling(T0) == pack(T0, 65535)
    assert retry_after_ms(T0, OFFSET) == T0 + OFFSET
    assert retry_floor(pack(T0 + 9), T0) == pack(T0 + 9)  # the client's own stamp if higher


def test_a_write_past_its_deadline_is_late_and_changes_nothing() -> None:
    state = StoreState("a", 4, HLC(pack(T0), OFFSET))
    late = local_put(state, "k", VALUE, T0 + 2_000, 0, T0 + 1_000)
    assert isinstance(late, Late) and isinstance(late.error(), ErrTimeout)
    live = Row("k", VALUE, False, 1, pack(T0), "a")
    assert isinstance(local_delete(state, live, "k", T0 + 2_000, 0, T0 + 1_000), Late)
    assert isinstance(local_put(state, "k", VALUE, T0 + 2_000, 0, T0 + 2_000), Written)


clocks = st.integers(T0 - OFFSET, T0 + 60_000)


@given(
    deadline=st.integers(T0, T0 + 10_000),
    a_now=clocks,
    a_ahead=st.integers(0, OFFSET),
    a_seen=st.integers(0, OFFSET),
    b_skew=st.integers(-OFFSET, OFFSET),
    b_ahead=st.integers(0, OFFSET),
    waited=st.integers(0, 5_000),
    c_skew=st.integers(-OFFSET, OFFSET),
    later=st.integers(0, 5_000),
)
def test_no_late_copy_orders_after_the_retry_or_any_later_write(
    deadline: int,
    a_now: int,
    a_ahead: int,
    a_seen: int,
    b_skew: int,
    b_ahead: int,
    waited: int,
    c_skew: int,
    later: int,
) -> None:
    # Node A stamps the first copy whenever it gets to it (its clock may have observed stamps
    # up to the max offset ahead, and the client's seen stamp too).
    a = StoreState("a", 0, HLC(pack(a_now + a_ahead), OFFSET))
    copy = local_put(a, "k", VALUE, a_now, pack(a_now + a_seen), deadline)
    # The balancer retries on B once its clock t is past the deadline by the offset; B's clock
    # is within the offset of the balancer's (else it is fenced and refuses client writes).
    t = retry_after_ms(deadline, OFFSET) + 1 + waited
    b_now = t + b_skew
    b = StoreState("b", 0, HLC(pack(b_now + b_ahead), OFFSET))
    retry = local_put(b, "k", VALUE, b_now, retry_floor(0, deadline), b_now + 5_000)
    assert isinstance(retry, Written), "the retry's floor must be admitted"
    # Another client's write begun after the retry was acknowledged, on a third node C.
    c_now = t + later + c_skew
    c = StoreState("c", 0, HLC(pack(c_now), OFFSET))
    other = local_put(c, "k", VALUE, c_now, 0, c_now + 5_000)
    assert isinstance(other, Written)
    # The same client's next write carries the retry's stamp (refused outright if C's clock is
    # too far behind to admit it, as any session write would be).
    mine = local_put(c, "k", VALUE, c_now, retry.row.hlc, c_now + 5_000)
    assert isinstance(mine, Written | TooFarAhead)
    if isinstance(copy, Written):
        assert physical_ms(copy.row.hlc) <= deadline
        first = (copy.row.hlc, copy.row.origin)
        assert first < (retry.row.hlc, retry.row.origin)
        assert first < (other.row.hlc, other.row.origin)
        if isinstance(mine, Written):
            assert first < (mine.row.hlc, mine.row.origin)
    else:
        assert isinstance(copy, Late)


@given(
    deadline=st.integers(T0, T0 + 10_000),
    a_now=clocks,
    b_now=st.integers(T0 - 60_000, T0 + 60_000),
)
def test_the_floor_orders_the_retry_after_the_copy_whatever_the_retry_nodes_clock(
    deadline: int, a_now: int, b_now: int
) -> None:
    """A node whose clock is far behind (not yet fenced) would stamp the retry below the first
    copy; the floor makes it order after it, or be refused as too far ahead: never misorder."""
    a = StoreState("a", 0, HLC(0, OFFSET))
    copy = local_put(a, "k", VALUE, a_now, 0, deadline)
    b = StoreState("b", 0, HLC(0, OFFSET))
    retry = local_put(b, "k", VALUE, b_now, retry_floor(0, deadline), 0)
    if isinstance(copy, Written) and isinstance(retry, Written):
        assert (copy.row.hlc, copy.row.origin) < (retry.row.hlc, retry.row.origin)
    else:
        assert isinstance(copy, Late) or isinstance(retry, TooFarAhead)


@given(st.integers(0, 2**40), st.integers(1, 60_000), st.integers(0, 2**40))
def test_no_attempt_outlives_the_callers_deadline(now: int, timeout: int, caller: int) -> None:
    d = deadline.attempt_deadline(now, timeout, caller)
    assert d <= now + timeout
    assert caller == 0 or d <= caller
    assert d == now + timeout or d == caller


@given(st.integers(1, 2**40), st.integers(0, 5_000), st.integers(0, 2**40), st.booleans())
def test_a_retry_goes_only_while_the_caller_waits(
    reached: int, offset: int, caller: int, left: bool
) -> None:
    ok = deadline.retry_allowed(reached, offset, caller, left)
    if left:
        assert not ok  # nobody waits for its answer: a copy stamped now could order last
    elif caller == 0:
        assert ok
    else:  # the retry is sent at retry_after_ms: before the caller gives up, or not at all
        assert ok == (deadline.retry_after_ms(reached, offset) < caller)
