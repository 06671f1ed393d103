"""A replicated batch applied in one pass is `apply_replicated` folded over its rows."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from dtm.core.hlc import HLC, pack
from dtm.core.order import Outcome
from dtm.core.syncapply import BatchApplied, admitted_up_to, apply_batch
from dtm.core.writes import StoreState, TooFarAhead, Written, apply_replicated
from dtm.wire import NULL, Row

NOW = 1_790_000_000_000
KEYS = ("a", "b", "c")
ORIGINS = ("n1", "n2", "n3")


def one_by_one(state: StoreState, current: dict[str, Row], rows: list[Row], now: int) -> object:
    """The reference: each row through `apply_replicated`, as a store once did it."""
    have = dict(current)
    written: list[tuple[Row, Row | None]] = []
    losers: list[Row] = []
    held: list[int] = []
    ignored = 0
    for row in rows:
        old = have.get(row.key)
        res = apply_replicated(state, old, row, now)
        if isinstance(res, TooFarAhead):
            held.append(row.version)
        elif isinstance(res, Written):
            state = res.state
            written.append((res.row, old))
            have[row.key] = res.row
        else:
            state = res.state
            ignored += 1
            if res.outcome is Outcome.LOSE:
                losers.append(row)
    return BatchApplied(state, written, ignored, losers, held)


def row(key: str, ms: int, origin: str, deleted: bool = False, version: int = 1) -> Row:
    value = NULL if deleted else msgspec.Raw(b'"%d"' % ms)
    return Row(key, value, deleted, version, pack(ms), origin)


def row_at(key: str, stamp: int, origin: str, deleted: bool = False, version: int = 1) -> Row:
    value = NULL if deleted else msgspec.Raw(b'"%d"' % stamp)
    return Row(key, value, deleted, version, stamp, origin)


rows_st = st.one_of(
    st.builds(
        row,
        st.sampled_from(KEYS),
        st.integers(NOW - 3, NOW + 503),  # some beyond the 500 ms the clock admits
        st.sampled_from(ORIGINS),
        st.booleans(),
        st.integers(1, 50),
    ),
    st.builds(  # stamps at the edge of the clock's bound, and at the ends of the range
        row_at,
        st.sampled_from(KEYS),
        st.sampled_from(
            [0, 1, pack(NOW + 500, 0xFFFF), pack(NOW + 501), pack(NOW + 501) - 1, 2**63 - 1]
        ),
        st.sampled_from(ORIGINS),
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(rows_st, max_size=12),
    st.lists(rows_st, max_size=3),
    st.integers(0, 5),
    st.integers(NOW - 10, NOW + 10),
)
def test_a_batch_is_the_fold_of_single_applies(
    rows: list[Row], stored: list[Row], version: int, clock_ms: int
) -> None:
    current = {r.key: r for r in stored if r.hlc <= pack(NOW + 500)}
    state = StoreState("n0", version, HLC(pack(clock_ms)))
    assert apply_batch(state, current, rows, NOW) == one_by_one(state, current, rows, NOW)


def test_an_empty_store_takes_every_row_with_consecutive_versions() -> None:
    state = StoreState("n0", 7, HLC(0))
    rows = [row(k, NOW - i, "n2", version=40 + i) for i, k in enumerate(KEYS)]
    out = apply_batch(state, {}, rows, NOW)
    assert [(new.key, new.version, new.hlc, old) for new, old in out.written] == [
        (r.key, 8 + i, r.hlc, None) for i, r in enumerate(rows)
    ]
    assert out.state == StoreState("n0", 10, HLC(pack(NOW)))
    assert (out.ignored, out.losers, out.held) == (0, [], [])


def test_a_batch_that_changes_nothing_keeps_the_state_itself() -> None:
    state = StoreState("n0", 3, HLC(pack(NOW)))
    here = row("a", NOW - 5, "n2")
    out = apply_batch(state, {"a": here}, [here, row("a", NOW - 9, "n3")], NOW)
    assert out.state is state and out.written == [] and out.ignored == 2


def test_the_bound_is_what_admits_takes() -> None:
    assert admitted_up_to(NOW, 500) == pack(NOW + 500, 0xFFFF)
    assert admitted_up_to(2**47 - 1, 500) == 2**63 - 1  # the range ends first
    assert admitted_up_to(NOW, -1) is None  # no bound to speak of: each stamp is asked
