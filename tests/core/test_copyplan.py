"""The pushed copy of a write (`[handler] write_copies`): what is sent, and what counts as held."""

from __future__ import annotations

import msgspec

from dtm import wire
from dtm.core import copyplan
from dtm.core.hlc import pack
from dtm.core.session import contribution

EPOCH = "0123456789abcdef"
ROW = wire.Row("u.k", msgspec.Raw(b'{"a":1}'), False, 7, pack(1_790_000_000_000, 3), "store1")
TOMBSTONE = wire.Row("u.k", wire.NULL, True, 8, pack(1_790_000_000_001), "store1")


def test_the_copy_goes_to_every_node_but_the_one_that_took_the_write() -> None:
    assert copyplan.targets(["store1", "store2", "store3"], "store2") == ("store1", "store3")
    assert copyplan.targets(["store1"], "store1") == ()


def test_the_copy_is_the_stored_row_itself_and_claims_nothing_of_the_feed() -> None:
    for row in (ROW, TOMBSTONE):
        req = copyplan.copy_of(row, EPOCH)
        assert req.rows == [row]  # the very write: key, value, deleted, hlc, origin
        assert (req.source, req.epoch) == ("store1", EPOCH)
        assert req.source_version == 0  # applied through 0: a record only ever grows
        assert req.target_epoch is None  # a repair's kind: no target epoch to refuse it for
        # Exactly this on the wire: nothing else claimed.
        body = wire.encode(req)
        assert b'"source_version":0' in body and b"target_epoch" not in body


def test_the_pushable_write_is_the_answering_nodes_own_row_for_the_key() -> None:
    session = contribution("store1", EPOCH, 7, ROW.hlc)
    assert copyplan.pushable("u.k", ROW, session) == copyplan.copy_of(ROW, EPOCH)
    assert copyplan.pushable("u.other", ROW, session) is None  # an answer for another key
    # The epoch of the row's origin must be known, from that node's own contribution.
    assert copyplan.pushable("u.k", ROW, contribution("store2", EPOCH, 7, ROW.hlc)) is None
    assert copyplan.pushable("u.k", ROW, None) is None


def test_a_target_holds_the_copy_once_applied_or_it_already_had_it_or_newer() -> None:
    assert copyplan.holds(wire.ReplicateResponse(1, 0, 5))  # won the merge: stored now
    assert copyplan.holds(wire.ReplicateResponse(0, 1, 5))  # the same write was there
    assert copyplan.holds(wire.ReplicateResponse(0, 1, 5, [ROW]))  # a newer write is there


def test_a_held_back_copy_or_an_empty_answer_is_not_held() -> None:
    # Stamped beyond the max offset ahead of the target's clock: not stored.
    assert not copyplan.holds(wire.ReplicateResponse(0, 0, 5, held_from=7))
    assert not copyplan.holds(wire.ReplicateResponse(0, 0, 5))
