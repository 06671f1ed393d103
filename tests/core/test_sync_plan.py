"""Pure sync decisions: cursors, paging, epochs, the purge rule, the conflict rule, repairs."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from dtm.core.conflicts import Delivery, conflict
from dtm.core.order import Outcome, merge, write_id
from dtm.core.purge import Candidate, note_held, waiting_for
from dtm.core.repair import plan_repairs
from dtm.core.syncplan import (
    Batch,
    Cursor,
    advance,
    cursor_of,
    fetch_since,
    page_reach,
    plan_batches,
)
from dtm.wire import NULL, BucketRows, ChangesPage, Row, RowId

EPOCHS = {"a": "ea", "b": "eb", "c": "ec"}


def row(key: str, version: int, hlc: int = 1, origin: str = "a", deleted: bool = False) -> Row:
    value = NULL if deleted else msgspec.Raw(b"1")
    return Row(key, value, deleted, version, hlc, origin)


def feed(n: int) -> list[Row]:
    return [row(f"k{v}", v, hlc=v) for v in range(1, n + 1)]


def page_of(rows: list[Row], since: int, limit: int, top: int) -> ChangesPage:
    got = [r for r in rows if r.version > since][:limit]
    return ChangesPage("a", "ea", top, got)


@given(st.integers(0, 40), st.integers(1, 7), st.lists(st.integers(0, 40), min_size=2, max_size=2))
def test_paging_delivers_every_row_once_in_order(n: int, limit: int, starts: list[int]) -> None:
    rows = feed(n)
    top = n
    cursors = {
        ("a", t): Cursor("ea", EPOCHS[t], min(s, n)) for t, s in zip("bc", starts, strict=True)
    }
    got: dict[str, list[int]] = {"b": [], "c": []}
    for _ in range(100):
        since = fetch_since(cursors, "a", ["b", "c"], EPOCHS)
        assert since is not None
        page = page_of(rows, since, limit, top)
        batches = plan_batches(page, since, limit, cursors, {"b": "eb", "c": "ec"}, EPOCHS)
        if not batches:
            break
        for b in batches:
            assert all(b.since < r.version <= b.reach for r in b.rows)
            got[b.target] += [r.version for r in b.rows]
            cursors[("a", b.target)] = advance(cursors, b, EPOCHS)
    for t, s in zip("bc", starts, strict=True):
        assert got[t] == list(range(min(s, n) + 1, n + 1))
        assert cursors[("a", t)].version == n


@given(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30))
def test_cursor_never_moves_back_and_needs_no_gap(old: int, since: int, reach: int) -> None:
    cursors = {("a", "b"): Cursor("ea", "eb", old)}
    b = Batch("a", "ea", "b", "eb", since, reach, ())
    new = advance(cursors, b, EPOCHS)
    if since > old:
        assert new.version == old  # the batch does not start where the target is: no skip
    else:
        assert new.version == max(old, reach)


@given(
    st.integers(0, 30),
    st.integers(1, 6),
    st.lists(st.tuples(st.integers(1, 30), st.integers(1, 3)), max_size=6),
)
def test_a_held_row_is_delivered_again_and_nothing_is_lost(
    n: int, limit: int, holds: list[tuple[int, int]]
) -> None:
    """A target holding rows back (its clock is behind their stamps) keeps the cursor before the
    first one; the row comes again with the next page, and every row lands exactly once."""
    rows = feed(n)
    refusals = dict(holds)  # version -> how many deliveries it is held back for
    cursors: dict[tuple[str, str], Cursor] = {}
    landed: list[int] = []
    for _ in range(200):
        since = fetch_since(cursors, "a", ["b"], EPOCHS)
        assert since is not None
        page = page_of(rows, since, limit, n)
        batches = plan_batches(page, since, limit, cursors, {"b": "eb"}, EPOCHS)
        if not batches:
            break
        (b,) = batches
        held = [r.version for r in b.rows if refusals.get(r.version, 0) > 0]
        for v in held:
            refusals[v] -= 1
        landed += [r.version for r in b.rows if r.version not in held]
        held_from = min(held) if held else 0
        cursors[("a", "b")] = advance(cursors, b, EPOCHS, held_from)
        if held_from:
            assert cursors[("a", "b")].version == max(b.since, held_from - 1)
    assert sorted(set(landed)) == list(range(1, n + 1))
    assert cursors.get(("a", "b"), Cursor("ea", "eb", 0)).version == n


def test_epoch_change_resets_cursors_from_and_into_a_node() -> None:
    cursors = {("a", "b"): Cursor("ea", "eb", 9), ("b", "a"): Cursor("eb", "ea", 7)}
    assert cursor_of(cursors, "a", "b", EPOCHS) == 9
    wiped_b = {**EPOCHS, "b": "eb2"}
    assert cursor_of(cursors, "a", "b", wiped_b) == 0  # b gets a full copy of a
    assert cursor_of(cursors, "b", "a", wiped_b) == 0  # b's new feed is read from the start
    # An ack of a batch planned before the wipe does not count for the new database.
    stale = Batch("a", "ea", "b", "eb", 0, 12, ())
    assert advance(cursors, stale, wiped_b).version == 9
    fresh = Batch("a", "ea", "b", "eb2", 0, 12, ())
    assert advance(cursors, fresh, wiped_b) == Cursor("ea", "eb2", 12)


def test_page_reach_full_vs_complete() -> None:
    rows = feed(5)
    assert page_reach(ChangesPage("a", "ea", 9, rows[:3]), 0, 3) == 3  # full: more may follow
    assert page_reach(ChangesPage("a", "ea", 9, rows[3:]), 3, 3) == 9  # complete: up to the top
    assert page_reach(ChangesPage("a", "ea", 9, []), 4, 3) == 9  # empty batch, version moved


def test_empty_batch_when_only_the_source_version_moved() -> None:
    cursors = {("a", "b"): Cursor("ea", "eb", 4)}
    page = ChangesPage("a", "ea", 6, [])  # e.g. the top row was a purged tombstone
    (b,) = plan_batches(page, 4, 10, cursors, {"b": "eb"}, EPOCHS)
    assert b.rows == () and b.reach == 6 and b.request().source_version == 6


nodes3 = ["a", "b", "c"]
PAIRS = st.tuples(st.sampled_from(nodes3), st.sampled_from(nodes3))


@given(
    st.dictionaries(st.sampled_from(nodes3), st.integers(0, 10)),
    st.dictionaries(
        st.tuples(st.sampled_from(nodes3), st.sampled_from(nodes3)), st.integers(0, 10)
    ),
)
def test_purge_rule(held: dict[str, int], cur: dict[tuple[str, str], int]) -> None:
    c = Candidate(RowId("k", 5, "a"))
    for n, v in held.items():
        c = note_held(c, n, EPOCHS[n], v)
    cursors = {(s, t): Cursor(EPOCHS[s], EPOCHS[t], v) for (s, t), v in cur.items() if s != t}
    reasons = waiting_for(c, nodes3, EPOCHS, cursors)
    expect = all(
        x in held and all(cursor_of(cursors, x, t, EPOCHS) >= held[x] for t in nodes3 if t != x)
        for x in nodes3
    )
    assert (not reasons) == expect
    # A node that is wiped (new epoch) holds the purge back until it holds the tombstone again.
    assert waiting_for(c, nodes3, {**EPOCHS, "b": "new"}, cursors)
    # A node never heard from holds it back too.
    assert waiting_for(c, [*nodes3, "d"], EPOCHS, cursors)


def test_conflict_rule() -> None:
    # The spec's example: updated on A and deleted on B between two exchanges.
    u = row("100", 3, hlc=10, origin="a")
    d = row("100", 2, hlc=11, origin="b", deleted=True)
    to_b = Delivery("a", "b", u, ack=2)  # B held d when it took u
    found = conflict(to_b, d, None, now_ms=99)
    assert found is not None and found.winner == d and found.loser == u and found.node == "b"
    # B wrote after it had received u: an overwrite, not a conflict.
    assert conflict(Delivery("a", "b", u, ack=1), d, None, 0) is None
    # A had been given d before it wrote u: also an overwrite.
    d_to_a = Delivery("b", "a", d, ack=2)
    assert conflict(to_b, d, d_to_a, 0) is None
    # The same write arriving again is never a conflict.
    assert conflict(Delivery("a", "b", u, ack=9), row("100", 7, 10, "a"), None, 0) is None


def test_one_nodes_overwrite_of_its_own_copied_write_is_no_conflict() -> None:
    """A makes a task, the sync copies it to B, A updates it; B's copy of the create (at a version
    the sync's acknowledgement may not cover) is A's own earlier write: an overwrite."""
    create = row("100", 1, hlc=10, origin="a")
    copy_on_b = row("100", 5, hlc=10, origin="a")
    update = row("100", 2, hlc=12, origin="a")
    assert conflict(Delivery("a", "b", update, ack=5), copy_on_b, None, 0) is None
    assert conflict(Delivery("a", "b", update, ack=5), create, None, 0) is None


def test_conflict_winner_is_the_later_write_in_either_direction() -> None:
    older = row("k", 1, hlc=5, origin="b")
    newer = row("k", 4, hlc=5, origin="c")  # same stamp: the origin breaks the tie
    for delivered, local in ((older, newer), (newer, older)):
        c = conflict(Delivery("x", "y", delivered, ack=10), local, None, 0)
        assert c is not None and c.winner == newer and c.loser == older


rows_st = st.lists(
    st.builds(
        row,
        key=st.sampled_from(["p", "q", "r"]),
        version=st.just(1),
        hlc=st.integers(1, 6),
        origin=st.sampled_from(nodes3),
        deleted=st.booleans(),
    ),
    max_size=4,
)


@given(st.lists(rows_st, min_size=3, max_size=3))
def test_repairs_bring_every_node_to_the_winners(per_node: list[list[Row]]) -> None:
    state = {n: {r.key: r for r in rs} for n, rs in zip(nodes3, per_node, strict=True)}
    buckets = {n: BucketRows(n, EPOCHS[n], list(state[n].values())) for n in nodes3}
    for rep in plan_repairs(buckets):
        for r in rep.rows:
            if merge(state[rep.target].get(r.key), r) is Outcome.APPLY:
                state[rep.target][r.key] = r
    ids = [{k: write_id(r) for k, r in state[n].items()} for n in nodes3]
    assert ids[0] == ids[1] == ids[2]
    assert (
        plan_repairs({n: BucketRows(n, EPOCHS[n], list(state[n].values())) for n in nodes3}) == []
    )
