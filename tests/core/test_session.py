"""The session-token rule: which replica may serve a session's read."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dtm.core.session import adopt_new_epochs, contribution, merge_tokens, unmet
from dtm.wire import PeerApplied, SessionToken

tokens = st.builds(
    SessionToken,
    versions=st.dictionaries(st.sampled_from(["s1", "s2", "s3"]), st.integers(0, 50)),
    hlc=st.integers(0, 100),
).map(lambda t: SessionToken(t.versions, {k: "e" for k in t.versions}, t.hlc))


def test_the_origin_of_a_write_always_qualifies() -> None:
    tok = contribution("s1", "e1", 7, 100)
    assert unmet(tok, "s1", "e1", 7, {}) == []


def test_a_replica_that_has_not_applied_the_write_does_not() -> None:
    tok = contribution("s1", "e1", 7, 100)
    assert unmet(tok, "s2", "e2", 50, {}) == ["s1@7"]
    assert unmet(tok, "s2", "e2", 50, {"s1": PeerApplied("e1", 6)}) == ["s1@7"]
    assert unmet(tok, "s2", "e2", 50, {"s1": PeerApplied("e1", 7)}) == []


def test_a_wiped_node_does_not_qualify_for_what_its_old_self_served() -> None:
    tok = contribution("s1", "old", 7, 100)
    assert unmet(tok, "s1", "new", 100, {}) == ["s1@7"]


def test_tokens_merge_by_pointwise_maximum_and_restart_on_a_new_epoch() -> None:
    a = merge_tokens(contribution("s1", "e1", 5, 10), contribution("s2", "e2", 3, 20))
    b = merge_tokens(a, contribution("s1", "e1", 4, 5))
    assert b == SessionToken({"s1": 5, "s2": 3}, {"s1": "e1", "s2": "e2"}, 20)
    c = merge_tokens(b, contribution("s1", "e9", 1, 5))
    assert c.versions["s1"] == 1 and c.epochs["s1"] == "e9"


@given(tokens, tokens, tokens)
def test_merge_is_associative_commutative_and_idempotent(
    a: SessionToken, b: SessionToken, c: SessionToken
) -> None:
    assert merge_tokens(merge_tokens(a, b), c) == merge_tokens(a, merge_tokens(b, c))
    assert merge_tokens(a, b) == merge_tokens(b, a)
    assert merge_tokens(a, a) == a


@given(tokens, tokens)
def test_a_replica_that_satisfies_a_merged_token_satisfies_both_parts(
    a: SessionToken, b: SessionToken
) -> None:
    merged = merge_tokens(a, b)
    applied = {n: PeerApplied("e", v) for n, v in merged.versions.items()}
    assert unmet(merged, "other", "x", 0, applied) == []
    assert unmet(a, "other", "x", 0, applied) == [] and unmet(b, "other", "x", 0, applied) == []


def test_version_zero_requires_nothing() -> None:
    tok = SessionToken({"s1": 0}, {"s1": "e1"}, 0)
    assert unmet(tok, "s2", "e2", 0, {}) == []


def test_a_stale_entry_takes_the_nodes_new_epoch() -> None:
    tok = SessionToken({"s1": 5, "s2": 7}, {"s1": "old", "s2": "e2"}, 10)
    fresh = adopt_new_epochs(tok, contribution("s1", "new", 0, 3))
    assert fresh == SessionToken({"s1": 0, "s2": 7}, {"s1": "new", "s2": "e2"}, 10)
    assert unmet(fresh, "s1", "new", 0, {"s2": PeerApplied("e2", 7)}) == []
    # the same epoch, or a node the token does not name, changes nothing
    assert adopt_new_epochs(tok, contribution("s2", "e2", 99, 3)) is tok
    assert adopt_new_epochs(tok, contribution("s9", "x", 1, 3)) is tok
