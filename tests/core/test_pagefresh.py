"""The rule by which a node's latest report vouches for a held page copy (no round trip)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dtm.core.pagefresh import MARK_TTL_MS, Mark, servable
from dtm.core.session import merge_tokens
from dtm.wire import PeerApplied, SessionToken

EMPTY = SessionToken()
E1, E2 = "e1", "e2"


def _mark(version: int = 7, epoch: str = E1, applied: dict[str, PeerApplied] | None = None) -> Mark:
    return Mark("s1", epoch, version, applied or {}, at_ms=1000.0)


def test_a_current_report_vouches_for_the_copy_it_names() -> None:
    assert servable(_mark(), 1000.0, E1, 7, EMPTY)
    assert servable(_mark(), 1000.0 + MARK_TTL_MS, E1, 7, EMPTY)


def test_a_report_of_another_version_or_epoch_vouches_for_nothing() -> None:
    assert not servable(_mark(8), 1000.0, E1, 7, EMPTY)  # the node moved on: ask it
    assert not servable(_mark(6), 1000.0, E1, 7, EMPTY)  # a copy newer than the report
    assert not servable(_mark(epoch=E2), 1000.0, E1, 7, EMPTY)  # the node was wiped
    assert not servable(None, 1000.0, E1, 7, EMPTY)


def test_an_old_report_or_one_from_the_future_vouches_for_nothing() -> None:
    assert not servable(_mark(), 1000.0 + MARK_TTL_MS + 1, E1, 7, EMPTY)
    assert not servable(_mark(), 999.0, E1, 7, EMPTY)


def test_the_session_must_be_met_by_the_copy_itself() -> None:
    own = SessionToken({"s1": 7}, {"s1": E1})
    assert servable(_mark(), 1000.0, E1, 7, own)
    ahead = SessionToken({"s1": 8}, {"s1": E1})  # the session wrote at 8: the copy lacks it
    assert not servable(_mark(), 1000.0, E1, 7, ahead)
    other = SessionToken({"s2": 5}, {"s2": E2})  # a write on s2 the copy must have applied
    assert not servable(_mark(), 1000.0, E1, 7, other)
    assert not servable(_mark(applied={"s2": PeerApplied(E2, 4)}), 1000.0, E1, 7, other)
    assert not servable(_mark(applied={"s2": PeerApplied("e9", 9)}), 1000.0, E1, 7, other)
    assert servable(_mark(applied={"s2": PeerApplied(E2, 5)}), 1000.0, E1, 7, other)


names = st.sampled_from(["s1", "s2", "s3"])
epochs = st.fixed_dictionaries({n: st.sampled_from([E1, E2]) for n in ["s1", "s2", "s3"]})
versions = st.dictionaries(names, st.integers(0, 20))
applieds = st.dictionaries(
    names, st.builds(PeerApplied, st.sampled_from([E1, E2]), st.integers(0, 20))
)


@given(epochs, versions, versions, applieds, st.integers(0, 20), st.floats(0, 3 * MARK_TTL_MS))
def test_a_session_that_has_seen_more_is_never_served_where_one_that_saw_less_is_not(
    epoch_of: dict[str, str],
    seen: dict[str, int],
    later: dict[str, int],
    applied: dict[str, PeerApplied],
    version: int,
    age: float,
) -> None:
    def token(vs: dict[str, int]) -> SessionToken:
        return SessionToken(vs, {n: epoch_of[n] for n in vs})

    mark = Mark("s1", E1, version, applied, at_ms=0.0)
    less, more = token(seen), merge_tokens(token(seen), token(later))
    if servable(mark, age, E1, version, more):
        assert servable(mark, age, E1, version, less)
    if servable(mark, age, E1, version, less):
        assert age <= MARK_TTL_MS
