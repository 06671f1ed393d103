"""The LWW merge rule: a total order by (hlc, origin); merge is commutative, associative,
idempotent; any delivery order of the same writes converges to the oracle."""

from __future__ import annotations

import random

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from dtm.core.order import Outcome, merge, winner, write_id
from dtm.wire import NULL, Row

ORIGINS = ["store1", "store2", "store3"]


def row(key: str, hlc: int, origin: str, deleted: bool = False, version: int = 1) -> Row:
    value = NULL if deleted else msgspec.Raw(b'"%d-%s"' % (hlc, origin.encode()))
    return Row(key, value, deleted, version, hlc, origin)


writes = st.builds(
    row,
    key=st.sampled_from(["a", "b", "c"]),
    hlc=st.integers(0, 20),
    origin=st.sampled_from(ORIGINS),
    deleted=st.booleans(),
)


def test_the_later_stamp_wins_and_origin_breaks_ties() -> None:
    assert merge(row("k", 1, "store1"), row("k", 2, "store1")) is Outcome.APPLY
    assert merge(row("k", 2, "store1"), row("k", 1, "store2")) is Outcome.LOSE
    assert merge(row("k", 2, "store1"), row("k", 2, "store2")) is Outcome.APPLY
    assert merge(row("k", 2, "store2"), row("k", 2, "store1")) is Outcome.LOSE
    assert merge(None, row("k", 0, "store1")) is Outcome.APPLY


def test_the_same_write_again_is_a_no_op() -> None:
    assert merge(row("k", 5, "store1"), row("k", 5, "store1", version=9)) is Outcome.SAME


def test_a_tombstone_is_ordered_like_any_write() -> None:
    # The spec's example: task 100 updated on A, deleted on B between two polls.
    update_a = row("100", 10, "store1")
    delete_b = row("100", 11, "store2", deleted=True)
    assert winner(update_a, delete_b) is delete_b
    assert winner(delete_b, update_a) is delete_b
    later_update = row("100", 12, "store1")
    assert winner(delete_b, later_update) is later_update


@given(writes, writes)
def test_winner_is_commutative(a: Row, b: Row) -> None:
    assert write_id(winner(a, b)) == write_id(winner(b, a))


@given(writes, writes, writes)
def test_winner_is_associative(a: Row, b: Row, c: Row) -> None:
    assert write_id(winner(winner(a, b), c)) == write_id(winner(a, winner(b, c)))


@given(writes)
def test_winner_is_idempotent(a: Row) -> None:
    assert winner(a, a) is a


@given(writes, writes)
def test_merge_agrees_with_winner(local: Row, incoming: Row) -> None:
    out = merge(local, incoming)
    w = winner(local, incoming)
    if out is Outcome.APPLY:
        assert write_id(w) == write_id(incoming) and write_id(incoming) > write_id(local)
    elif out is Outcome.SAME:
        assert write_id(local) == write_id(incoming)
    else:
        assert write_id(w) == write_id(local) and write_id(incoming) < write_id(local)


def apply_all(deliveries: list[Row]) -> dict[str, Row]:
    state: dict[str, Row] = {}
    for r in deliveries:
        if merge(state.get(r.key), r) is Outcome.APPLY:
            state[r.key] = r
    return state


@given(st.lists(writes, max_size=40), st.integers(2, 5), st.randoms(use_true_random=False))
def test_replicas_converge_to_the_lww_oracle(
    history: list[Row], replicas: int, rnd: random.Random
) -> None:
    # Each write has one identity: keep one row per (hlc, origin) so "the same write" is the same.
    unique = {write_id(r): r for r in history}
    history = list(unique.values())
    oracle: dict[str, Row] = {}
    for r in history:
        oracle[r.key] = winner(oracle[r.key], r) if r.key in oracle else r
    for _ in range(replicas):
        deliveries = history + rnd.sample(history, k=min(len(history), rnd.randint(0, 10)))
        rnd.shuffle(deliveries)  # any interleaving, with duplicates
        state = apply_all(deliveries)
        assert {k: write_id(v) for k, v in state.items()} == {
            k: write_id(v) for k, v in oracle.items()
        }
