"""The failover rule (never sent: next; sent without an answer: next only if repeatable) and the
back-off of a peer that failed (skipped for a while, tried again later, healthy ones first)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dtm.core import backoff
from dtm.core.backoff import HEALTHY, Mark, failed, order
from dtm.core.failover import after_no_answer


def test_the_failover_rule() -> None:
    assert after_no_answer(sent=False, repeatable=False) == "next"  # a write never sent
    assert after_no_answer(sent=False, repeatable=True) == "next"
    assert after_no_answer(sent=True, repeatable=True) == "next"  # a read, or an idempotent write
    assert after_no_answer(sent=True, repeatable=False) == "maybe-applied"


def test_healthy_peers_go_first_in_turn() -> None:
    marks = [HEALTHY, HEALTHY, HEALTHY]
    assert order(marks, 0.0) == [0, 1, 2]
    assert order(marks, 0.0, turn=1) == [1, 2, 0]
    assert order(marks, 0.0, turn=5) == [2, 0, 1]
    assert order([], 0.0) == []


def test_a_failed_peer_is_skipped_for_a_while_then_tried_again() -> None:
    down = failed(HEALTHY, now=100.0)
    assert down == Mark(1, 100.0 + backoff.BASE_S)
    marks = [down, HEALTHY]
    assert order(marks, 100.5) == [1, 0]  # in back-off: last
    assert order(marks, 100.0 + backoff.BASE_S) == [0, 1]  # its back-off is over
    # Failing again doubles the pause, up to MAX_S.
    again = failed(down, now=101.0)
    assert again.until == 101.0 + 2 * backoff.BASE_S
    worst = HEALTHY
    for _ in range(40):
        worst = failed(worst, now=0.0)
    assert worst.until == backoff.MAX_S


def test_when_all_are_in_back_off_the_soonest_back_goes_first() -> None:
    marks = [Mark(3, 50.0), Mark(1, 20.0), Mark(2, 30.0)]
    assert order(marks, 10.0) == [1, 2, 0]


@given(
    st.lists(st.floats(0, 100), max_size=6),
    st.floats(0, 100),
    st.integers(0, 50),
)
def test_every_peer_is_tried_once(untils: list[float], now: float, turn: int) -> None:
    marks = [Mark(1, u) for u in untils]
    got = order(marks, now, turn)
    assert sorted(got) == list(range(len(marks)))
    ready = [i for i in got if marks[i].until <= now]
    assert got[: len(ready)] == ready  # no peer in back-off before a ready one
