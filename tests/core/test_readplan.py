"""The session read plan against a model cluster: it ends, serves only what covers the token,
finds a cover whenever the reachable nodes hold one, adopts only for a node that itself answers
at another epoch, and refuses naming what is missing."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from dtm.core import deleteplan
from dtm.core import readplan as plan
from dtm.core.session import contribution, unmet
from dtm.errors import ErrClockSkew, ErrNotCaughtUp, ErrUnavailable
from dtm.wire import PeerApplied, SessionToken

NODES = ("s1", "s2", "s3")
EPOCHS = ("e1", "e2")


@dataclass(frozen=True)
class Node:
    epoch: str
    last: int
    applied: dict[str, PeerApplied]
    up: bool


def covers(n: str, node: Node, token: SessionToken) -> bool:
    return unmet(token, n, node.epoch, node.last, node.applied) == []


def answer(
    cluster: dict[str, Node], read: plan.Read
) -> plan.Served[str] | plan.Behind | plan.Unreachable:
    """What the balancer and the nodes answer: a pinned read goes to its node only; otherwise
    the first reachable node that covers the token serves, else the last one says behind."""
    order = [read.node] if read.node is not None else list(NODES)
    last: plan.Behind | None = None
    for n in order:
        node = cluster[n]
        if not node.up:
            continue
        if covers(n, node, read.token):
            return plan.Served(read, n, contribution(n, node.epoch, node.last, 0), n)
        last = plan.Behind(read, n, contribution(n, node.epoch, node.last, 0))
    if last is not None:
        return last
    return plan.Unreachable(read, "connection refused", ErrUnavailable("down"))


node_st = st.builds(
    Node,
    epoch=st.sampled_from(EPOCHS),
    last=st.integers(0, 9),
    applied=st.dictionaries(
        st.sampled_from(NODES),
        st.builds(PeerApplied, st.sampled_from(EPOCHS), st.integers(0, 9)),
    ),
    up=st.booleans(),
)
cluster_st = st.fixed_dictionaries({n: node_st for n in NODES})
token_st = st.dictionaries(
    st.sampled_from(NODES), st.tuples(st.sampled_from(EPOCHS), st.integers(0, 9)), min_size=1
).map(
    lambda d: SessionToken({k: v for k, (_, v) in d.items()}, {k: e for k, (e, _) in d.items()}, 5)
)


def run(
    cluster: dict[str, Node], token: SessionToken, can_wait: bool
) -> tuple[plan.Done[str] | plan.Fail, SessionToken, int]:
    state: plan.ReadState[str]
    state, step = plan.start(token, NODES, can_wait)
    current, sent = token, 0
    while isinstance(step, plan.Send):
        current = step.token
        reads: list[plan.Read] = []
        final: plan.Done[str] | plan.Fail | None = None
        for read in step.reads:
            sent += 1
            assert sent < 200, "the plan does not end"
            state, nxt = plan.next_read(state, answer(cluster, read))
            if isinstance(nxt, plan.Send):
                reads += nxt.reads
                current = nxt.token
            elif nxt is not None:
                final = nxt
        step = final if final is not None else plan.Send(tuple(reads), current)
    return step, current, sent


def moved_on(cluster: dict[str, Node], token: SessionToken, n: str) -> bool:
    """n is at another epoch than the token's entry for it: it serves the session no entry
    until that entry is settled (its contribution would replace the entry unseen)."""
    return token.versions.get(n, 0) > 0 and token.epochs.get(n) != cluster[n].epoch


def coverable(cluster: dict[str, Node], token: SessionToken, x: str) -> bool:
    entry = plan.only(token, x)
    return any(
        cluster[n].up and covers(n, cluster[n], entry) and not moved_on(cluster, token, n)
        for n in NODES
    )


@given(cluster_st, token_st, st.booleans())
def test_the_plan_serves_a_cover_finds_one_when_it_exists_and_adopts_only_wiped_entries(
    cluster: dict[str, Node], token: SessionToken, can_wait: bool
) -> None:
    outcome, final, _ = run(cluster, token, can_wait)
    everything = all(coverable(cluster, token, x) for x in plan.entries(token)) and any(
        n.up for n in cluster.values()
    )
    if everything:
        assert isinstance(outcome, plan.Done), "a cover among the reachable nodes was missed"
        assert final == token  # nothing adopted when nothing needed to be
    if isinstance(outcome, plan.Done):
        served = {s.node for s in outcome.served}
        # no node joins the session at an epoch other than the one its entry names
        for n in served:
            assert final.versions.get(n, 0) == 0 or final.epochs.get(n) == cluster[n].epoch
        for x in plan.entries(final):
            entry = plan.only(final, x)
            assert any(covers(n, cluster[n], entry) for n in served), f"{x} is not covered"
    # An entry changes only for its own node, reachable, answering at another epoch, when no
    # reachable node covered it and every node answered.
    for x in token.versions:
        if final.epochs.get(x) != token.epochs.get(x):
            assert cluster[x].up and cluster[x].epoch == final.epochs[x] != token.epochs[x]
            assert not coverable(cluster, token, x)
            assert all(cluster[n].up for n in NODES)
        else:
            assert final.versions[x] == token.versions[x]
    if isinstance(outcome, plan.Fail):
        assert isinstance(outcome.error, ErrNotCaughtUp | ErrUnavailable)
        if isinstance(outcome.error, ErrNotCaughtUp):
            assert outcome.missing
            for x in outcome.missing:
                assert not coverable(cluster, final, x)
                assert x in outcome.error.message
            assert "todo session reset" in outcome.error.message


def test_no_single_node_covers_but_each_covers_its_own_entry_so_the_plan_merges() -> None:
    cluster = {
        "s1": Node("e1", 5, {}, True),
        "s2": Node("e1", 7, {}, True),
        "s3": Node("e1", 0, {}, True),
    }
    token = SessionToken({"s1": 5, "s2": 7}, {"s1": "e1", "s2": "e1"}, 0)
    outcome, final, sent = run(cluster, token, True)
    assert isinstance(outcome, plan.Done)
    assert sorted(s.node for s in outcome.served) == ["s1", "s2"]
    assert final == token and sent == 3  # one read through the balancer, then one per entry


def test_a_wiped_node_whose_old_writes_another_node_holds_is_read_there_not_adopted() -> None:
    cluster = {
        "s1": Node("e2", 1, {}, True),  # wiped: now at epoch e2
        "s2": Node("e1", 3, {"s1": PeerApplied("e1", 5)}, True),
        "s3": Node("e1", 0, {}, True),
    }
    token = SessionToken({"s1": 5}, {"s1": "e1"}, 0)
    outcome, final, _ = run(cluster, token, True)
    assert isinstance(outcome, plan.Done) and [s.node for s in outcome.served] == ["s2"]
    assert final == token


def test_the_refusal_names_the_unreachable_node_and_the_way_out() -> None:
    cluster = {
        "s1": Node("e1", 5, {}, True),
        "s2": Node("e1", 7, {}, False),
        "s3": Node("e1", 0, {}, True),
    }
    token = SessionToken({"s1": 5, "s2": 7}, {"s1": "e1", "s2": "e1"}, 0)
    outcome, final, _ = run(cluster, token, True)
    assert isinstance(outcome, plan.Fail) and outcome.missing == ("s2",)
    message = outcome.error.message
    assert "s2 is unreachable" in message and "s1, s3 have not applied them" in message
    assert "todo session reset" in message and "sync's state is unknown" in message
    assert final == token


@given(st.integers(0, 3), st.sampled_from(["deleted", "not live", "behind", "unreachable"]))
def test_the_delete_plan(rounds: int, outcome: str) -> None:
    pinned = deleteplan.next_delete(rounds, outcome, True)
    through = deleteplan.next_delete(rounds, outcome, False)
    if outcome == "deleted":
        assert isinstance(pinned, deleteplan.Deleted) and isinstance(through, deleteplan.Deleted)
    elif outcome == "unreachable":
        assert pinned == deleteplan.DeleteOn(None) and isinstance(through, plan.Fail)
    elif rounds > 0:
        assert isinstance(pinned, deleteplan.ReadBack) and isinstance(through, deleteplan.ReadBack)
    else:
        assert isinstance(pinned, plan.Fail)
    assert deleteplan.after_read_back(True, "s2") == deleteplan.DeleteOn("s2")
    assert isinstance(deleteplan.after_read_back(False, None), deleteplan.Deleted)


@given(st.integers(0, 3), st.booleans(), st.sampled_from([None, "s2"]))
def test_a_fenced_node_hands_the_delete_to_an_unfenced_one(
    rounds: int, pinned: bool, elsewhere: str | None
) -> None:
    step = deleteplan.next_delete(rounds, "fenced", pinned, elsewhere)
    if elsewhere is not None and rounds > 0:
        assert step == deleteplan.DeleteOn(elsewhere)
    else:
        assert isinstance(step, plan.Fail) and isinstance(step.error, ErrClockSkew)
        assert "clock" in step.error.message


def test_a_read_back_served_by_a_fenced_node_goes_to_the_first_unfenced_one() -> None:
    nodes = ("s1", "s2", "s3")
    fenced = frozenset({"s1"})
    assert deleteplan.unfenced(nodes, fenced) == "s2"
    assert deleteplan.unfenced(nodes, frozenset(nodes)) is None
    assert deleteplan.after_read_back(True, "s1", fenced, nodes) == deleteplan.DeleteOn("s2")
    assert deleteplan.after_read_back(True, "s3", fenced, nodes) == deleteplan.DeleteOn("s3")
    every = frozenset(nodes)
    assert deleteplan.after_read_back(True, "s1", every, nodes) == deleteplan.DeleteOn(None)
    assert isinstance(deleteplan.after_read_back(False, "s1", fenced, nodes), deleteplan.Deleted)
