"""No echo: a write is never sent back to a node known to hold it (or a later write of its key),
a wiped node is known to hold nothing, and a target's versions that are exactly a batch just
applied move the cursor back to the batch's source without a batch."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from dtm.core.syncplan import known_held, plan_batches
from dtm.core.syncstate import SyncEngine
from dtm.wire import ChangesPage, ReplicateResponse, Row

NODES = ["a", "b", "c"]


def row(key: str, version: int, hlc: int, origin: str) -> Row:
    return Row(key, msgspec.Raw(b"1"), False, version, hlc, origin)


def engine() -> SyncEngine:
    eng = SyncEngine(NODES)
    for n in NODES:
        eng.learn_epoch(n, f"e{n}", 0)
    return eng


def deliver(eng: SyncEngine, source: str, rows: list[Row], now: int = 0) -> None:
    """Read ``rows`` from ``source``'s feed and have every target apply them all (its versions
    then hold exactly those rows)."""
    top = rows[-1].version if rows else 0
    page = ChangesPage(source, f"e{source}", top, rows)
    since = eng.plan_fetch(source, NODES)
    assert since is not None
    out = eng.on_page(source, since, 1000, page, NODES, now)
    for b in out.batches:
        before = eng.last_versions[b.target]
        resp = ReplicateResponse(len(b.rows), 0, before + len(b.rows))
        eng.on_ack(b, resp, now)


def test_a_row_is_never_sent_back_to_the_node_it_came_from() -> None:
    eng = engine()
    w = row("k", 1, 100, "a")
    deliver(eng, "a", [w])
    # b's feed now holds the row at its version 1: the page read there plans nothing for a
    page = ChangesPage("b", "eb", 1, [row("k", 1, 100, "a")])
    since = eng.plan_fetch("b", NODES)
    out = eng.on_page("b", since or 0, 1000, page, NODES, 0)
    assert all(not b.rows for b in out.batches), out.batches


def test_the_echo_moves_the_cursor_back_without_a_batch_and_owes_an_empty_one() -> None:
    eng = engine()
    deliver(eng, "a", [row("k", 1, 100, "a"), row("j", 2, 101, "a")])
    # b's versions 1..2 are exactly a's rows: a needs none of them back; c's (acknowledged
    # after b's) are held by a and by b
    assert eng.cursors[("b", "a")].version == 2
    assert eng.cursors[("c", "a")].version == 2
    assert eng.cursors[("c", "b")].version == 2
    assert ("b", "c") not in eng.cursors  # c did not hold them yet when b acknowledged
    assert ("b", "a") in eng.owed_applied
    b = eng.applied_batch(("b", "a"))
    assert b is not None and b.rows == () and b.reach == 2


def test_a_local_write_in_between_keeps_the_cursor_where_it_was() -> None:
    eng = engine()
    page = ChangesPage("a", "ea", 1, [row("k", 1, 100, "a")])
    out = eng.on_page("a", 0, 1000, page, NODES, 0)
    for b in out.batches:
        # the target also committed a write of its own: 2 versions for 1 applied row
        eng.on_ack(b, ReplicateResponse(1, 0, 2), 0)
    assert ("b", "a") not in eng.cursors
    assert not eng.owed_applied


def test_a_wiped_node_is_sent_its_own_writes_again() -> None:
    eng = engine()
    deliver(eng, "a", [row("k", 1, 100, "a")])
    eng.learn_epoch("a", "wiped", 0)
    page = ChangesPage("b", "eb", 1, [row("k", 1, 100, "a")])
    since = eng.plan_fetch("b", NODES)
    assert since == 0  # the cursor into the wiped node counts for nothing
    out = eng.on_page("b", 0, 1000, page, NODES, 0)
    to_a = [b for b in out.batches if b.target == "a"]
    assert [r.key for b in to_a for r in b.rows] == ["k"]


def test_look_before_writing_even_when_the_target_seems_unchanged() -> None:
    """What the sync knows of b's last version can be behind (a write made on b while its feed's
    answer is on the way): skipping the look there would miss that write's conflict."""
    eng = engine()
    assert eng.look_since("b") is None  # never read: nothing to compare with
    deliver(eng, "b", [row("x", 1, 50, "b")])  # b's feed read up to 1
    assert eng.look_since("b") == 1  # nothing known to be new on b: looked at all the same
    eng.learn_epoch("b", "eb", 2)
    assert eng.look_since("b") == 1


writes = st.lists(
    st.tuples(st.sampled_from(["k1", "k2", "k3"]), st.integers(1, 50), st.sampled_from(NODES)),
    min_size=1,
    max_size=12,
)


@given(held=writes, sent=writes)
def test_plan_never_sends_a_write_the_target_holds(
    held: list[tuple[str, int, str]], sent: list[tuple[str, int, str]]
) -> None:
    holdings: dict[str, dict[str, tuple[int, str]]] = {"b": {}}
    for key, hlc, origin in held:
        holdings["b"][key] = max(holdings["b"].get(key, (0, "")), (hlc, origin))
    latest: dict[str, Row] = {}
    for i, (key, hlc, origin) in enumerate(sent, start=1):
        latest[key] = row(key, i, hlc, origin)
    rows = sorted(latest.values(), key=lambda r: r.version)
    page = ChangesPage("a", "ea", len(sent), rows)
    epochs = {"a": "ea", "b": "eb"}
    (b,) = plan_batches(page, 0, 1000, {}, {"b": "eb"}, epochs, holdings)
    assert b.reach == len(sent)
    for r in rows:
        assert (r in b.rows) == (not known_held(holdings, "b", r))


def test_a_row_left_out_for_a_later_write_of_its_key_is_still_a_conflict() -> None:
    # a and b both wrote k while the sync looked away (one stamp, so the origin decides: b's
    # wins). b's feed is read first: a's write is left out for b, which holds the later write,
    # and the conflict must be logged even though it is never delivered there.
    eng = SyncEngine(["a", "b"])
    for n in ("a", "b"):
        eng.learn_epoch(n, f"e{n}", 0)
    mine, theirs = row("k", 1, 500, "a"), row("k", 1, 500, "b")
    since_b = eng.plan_fetch("b", ["a", "b"])
    out_b = eng.on_page("b", since_b or 0, 1000, ChangesPage("b", "eb", 1, [theirs]), ["a", "b"], 0)
    assert [b.rows for b in out_b.batches] == [(theirs,)]  # b's write goes to a
    since_a = eng.plan_fetch("a", ["a", "b"])
    out_a = eng.on_page("a", since_a or 0, 1000, ChangesPage("a", "ea", 1, [mine]), ["a", "b"], 0)
    assert [b.rows for b in out_a.batches] == [()]  # b holds the later write: nothing to send
    assert [(c.winner, c.loser) for c in out_a.conflicts] == [(theirs, mine)]
    assert eng.conflict_total == 1
    for b in out_b.batches:  # delivering b's write to a later finds the same conflict: once
        eng.on_ack(b, ReplicateResponse(1, 0, 2), 0)
    assert eng.conflict_total == 1
