"""The hybrid logical clock: monotonic, never behind physical time, ordered after what it saw,
and bounded: no stamp more than the max offset ahead is ever merged, no stamp leaves 0..2**63-1."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtm.core.hlc import (
    HLC,
    LOGICAL_BITS,
    LOGICAL_MASK,
    MAX_STAMP,
    admits,
    logical,
    pack,
    physical_ms,
)
from dtm.errors import ErrInternal

NOW = 1_790_000_000_000  # a millisecond timestamp in 2026
OFFSET = 500

events = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.integers(NOW - 5_000, NOW + 5_000)),
        st.tuples(st.just("observe"), st.integers(0, MAX_STAMP)),
        st.tuples(st.just("observe"), st.integers(0, (NOW + 10_000) << LOGICAL_BITS)),
    ),
    max_size=60,
)


def test_pack_round_trips() -> None:
    s = pack(NOW, 7)
    assert physical_ms(s) == NOW and logical(s) == 7
    assert pack(NOW, 0) < pack(NOW, 1) < pack(NOW + 1, 0)


def test_tick_uses_physical_time_when_it_is_ahead() -> None:
    clock, stamp = HLC().tick(NOW)
    assert stamp == pack(NOW) and clock.last == stamp


def test_tick_counts_logically_within_one_millisecond() -> None:
    clock, a = HLC().tick(NOW)
    clock, b = clock.tick(NOW)
    clock, c = clock.tick(NOW - 100)  # the wall clock stepped back: stamps still grow
    assert a < b < c and physical_ms(c) == NOW


def test_observe_moves_later_stamps_past_the_remote_one() -> None:
    remote = pack(NOW + OFFSET, 3)
    obs = HLC(max_offset_ms=OFFSET).observe(remote, NOW)
    _, stamp = obs.clock.tick(NOW)
    assert obs.admitted and stamp > remote


def test_a_stamp_beyond_the_max_offset_is_refused_and_not_merged() -> None:
    clock = HLC(pack(NOW, 4), max_offset_ms=OFFSET)
    obs = clock.observe(pack(NOW + OFFSET + 1), NOW)
    assert not obs.admitted and obs.ahead_ms == OFFSET + 1 and obs.clock == clock
    ok = clock.observe(pack(NOW + OFFSET, LOGICAL_MASK), NOW)
    assert ok.admitted and ok.clock.last == pack(NOW + OFFSET, LOGICAL_MASK)


def test_a_stamp_near_2_63_is_refused_and_not_merged() -> None:
    clock = HLC(pack(NOW), max_offset_ms=OFFSET)
    for forged in (MAX_STAMP, MAX_STAMP - 1, MAX_STAMP + 1, 2**64):
        obs = clock.observe(forged, NOW)
        assert not obs.admitted and obs.clock == clock


def test_observing_an_older_stamp_changes_nothing() -> None:
    clock = HLC(pack(NOW, 5))
    assert clock.observe(pack(NOW - 1), NOW).clock == clock


def test_a_full_logical_part_carries_into_the_physical_part() -> None:
    clock, stamp = HLC(pack(NOW, LOGICAL_MASK)).tick(NOW)
    assert stamp == pack(NOW + 1, 0) and clock.last == stamp


def test_no_stamp_past_2_63_is_issued_it_is_a_server_fault() -> None:
    clock, stamp = HLC(MAX_STAMP - 1).tick(NOW)
    assert stamp == MAX_STAMP
    with pytest.raises(ErrInternal):
        clock.tick(NOW)


@given(events)
def test_stamps_are_strictly_monotonic_bounded_and_never_behind_physical_time(
    ev: list[tuple[str, int]],
) -> None:
    clock = HLC(max_offset_ms=OFFSET)
    last_stamp = 0
    for kind, arg in ev:
        if kind == "tick":
            clock, stamp = clock.tick(arg)
            assert stamp > last_stamp and stamp == clock.last
            assert physical_ms(stamp) >= arg and 0 <= stamp <= MAX_STAMP
            last_stamp = stamp
        else:
            before = clock.last
            obs = clock.observe(arg, NOW)
            clock = obs.clock
            assert obs.admitted == admits(arg, NOW, OFFSET)
            if obs.admitted:
                assert clock.last == max(before, arg)
                last_stamp = max(last_stamp, arg)
            else:
                assert clock.last == before
            # the clock never holds a stamp beyond what it admits now
            assert physical_ms(clock.last) <= max(NOW + OFFSET, NOW + 5_000) + 1


@given(
    st.integers(NOW - 2_000, NOW + 2_000),
    st.integers(LOGICAL_MASK - 60, LOGICAL_MASK),
    st.integers(1, 120),
    st.integers(NOW - 2_000, NOW + 2_000),
)
def test_logical_overflow_keeps_stamps_strictly_monotonic_and_in_range(
    phys: int, log: int, n: int, now: int
) -> None:
    start = pack(phys, log)
    clock = HLC(start)
    prev = start
    for _ in range(n):
        clock, stamp = clock.tick(now)
        assert prev < stamp <= MAX_STAMP and physical_ms(stamp) >= physical_ms(prev)
        prev = stamp
    if now <= phys and n > LOGICAL_MASK - log:
        assert physical_ms(prev) == phys + 1  # the counter was full: it carried


@given(st.integers(0, 1 << 60), st.integers(NOW - 10**6, NOW + 10**6))
def test_a_restarted_clock_resumes_from_its_persisted_bound(persisted: int, now: int) -> None:
    _, stamp = HLC(persisted).tick(now)
    assert stamp > persisted
