"""The session rule across epochs: a replica serves a token entry (X, e, v) only if it holds X's
feed at epoch e through v; a replica that applied another epoch of X, older or newer, does not."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dtm.core.session import contribution, unmet
from dtm.wire import PeerApplied, SessionToken


def test_a_replica_that_applied_only_the_old_epoch_does_not_serve_the_new_one() -> None:
    """The defect: X was wiped (new epoch), a write acknowledged on the new X is in the token; a
    replica that applied only the old epoch's feed (to a far higher version) used to pass."""
    tok = contribution("s1", "new", 1, 100)
    assert unmet(tok, "s2", "e2", 9, {"s1": PeerApplied("old", 50)}) == ["s1@1"]
    assert unmet(tok, "s2", "e2", 9, {"s1": PeerApplied("new", 1)}) == []


def test_a_replica_that_moved_on_to_a_newer_epoch_does_not_serve_the_old_one() -> None:
    """It restarted its record of X's feed with the new epoch: nothing proves it got the old
    epoch's tail (only X itself can say the old epoch is gone; the reader decides then)."""
    tok = contribution("s1", "old", 7, 100)
    assert unmet(tok, "s2", "e2", 9, {"s1": PeerApplied("new", 500)}) == ["s1@7"]
    assert unmet(tok, "s1", "new", 500, {}) == ["s1@7"]


# A model of node X's life: a list of epochs, each with the number of writes its feed reached;
# a replica applied some epoch j of that list up to some version (its record of X's feed).
lives = st.lists(st.integers(1, 20), min_size=1, max_size=4)


@given(lives, st.data())
def test_served_implies_the_replica_holds_every_write_the_entry_names(
    life: list[int], data: st.DataObject
) -> None:
    epochs = [f"e{i}" for i in range(len(life))]
    i = data.draw(st.integers(0, len(life) - 1), label="token epoch")
    v = data.draw(st.integers(0, life[i]), label="token version")
    j = data.draw(st.integers(0, len(life) - 1), label="replica's epoch of X")
    p = data.draw(st.integers(0, life[j]), label="replica's version of X")
    tok = SessionToken({"X": v}, {"X": epochs[i]}, 0)
    # The replica holds the writes 1..v of epoch i iff it applied epoch i through v (its record
    # of any other epoch says nothing about epoch i).
    holds = v == 0 or (i == j and p >= v)
    assert (unmet(tok, "R", "r", 0, {"X": PeerApplied(epochs[j], p)}) == []) == holds
    # X itself at epoch j with last_version p: the same rule.
    assert (unmet(tok, "X", epochs[j], p, {}) == []) == holds
