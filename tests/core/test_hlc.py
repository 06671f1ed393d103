"""The hybrid logical clock: monotonic, never behind physical time, ordered after what it saw."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dtm.core.hlc import HLC, LOGICAL_BITS, logical, pack, physical_ms

NOW = 1_790_000_000_000  # a millisecond timestamp in 2026

events = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.integers(NOW - 5_000, NOW + 5_000)),
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
    remote = pack(NOW + 60_000, 3)
    obs = HLC().observe(remote, NOW)
    _, stamp = obs.clock.tick(NOW)
    assert stamp > remote


def test_skew_beyond_max_offset_is_reported_but_still_merged() -> None:
    obs = HLC(max_offset_ms=500).observe(pack(NOW + 501), NOW)
    assert obs.skewed and obs.skew_ms == 501 and obs.clock.last == pack(NOW + 501)
    ok = HLC(max_offset_ms=500).observe(pack(NOW + 500), NOW)
    assert not ok.skewed


def test_observing_an_older_stamp_changes_nothing() -> None:
    clock = HLC(pack(NOW, 5))
    assert clock.observe(pack(NOW - 1), NOW).clock == clock


@given(events)
def test_stamps_are_strictly_monotonic_and_never_behind_physical_time(
    ev: list[tuple[str, int]],
) -> None:
    clock = HLC()
    last_stamp = 0
    for kind, arg in ev:
        if kind == "tick":
            clock, stamp = clock.tick(arg)
            assert stamp > last_stamp
            assert stamp > clock.last - 1 and physical_ms(stamp) >= arg
            last_stamp = stamp
        else:
            before = clock.last
            clock = clock.observe(arg, NOW).clock
            assert clock.last >= before and clock.last >= arg
            last_stamp = max(last_stamp, arg)


@given(st.integers(0, 1 << 60), st.integers(NOW - 10**6, NOW + 10**6))
def test_a_restarted_clock_resumes_from_its_persisted_bound(persisted: int, now: int) -> None:
    _, stamp = HLC(persisted).tick(now)
    assert stamp > persisted
