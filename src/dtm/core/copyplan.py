"""The copy of a write the request handler pushes to other nodes (``[handler] write_copies``).

Rule: the copy is the row exactly as the node that took the write stored and answered it — never
re-stamped — sent as a replicate call that claims nothing of that node's feed (``source_version``
0, no target epoch: a repair's kind, which only adds rows), to every other node; a target holds
it iff it answered with the row applied or ignored (that write, or a newer one of its key, is
there) and none held back.

Claiming nothing matters: a target's record of how far it applied a node's feed is what lets it
serve a session that wrote there (`dtm.core.session`), and a pushed row proves nothing about the
feed below it. The sync's later delivery of the same row is then a no-op on that target.
"""

from __future__ import annotations

from collections.abc import Sequence

from dtm.wire import ReplicateRequest, ReplicateResponse, Row, SessionToken


def targets(nodes: Sequence[str], origin: str) -> tuple[str, ...]:
    """The nodes a copy of a write ``origin`` took goes to: all the others."""
    return tuple(n for n in nodes if n != origin)


def copy_of(row: Row, origin_epoch: str) -> ReplicateRequest:
    """The replicate call carrying ``row`` (as its origin, at ``origin_epoch``, stored it)."""
    return ReplicateRequest(row.origin, origin_epoch, 0, [row])


def pushable(key: str, row: Row, contribution: SessionToken | None) -> ReplicateRequest | None:
    """The copy of the write a node answered with ``row`` and ``contribution`` (its session
    header), or None when the answer does not say enough: a row of another key, or no epoch
    of the row's origin from that node itself."""
    if row.key != key or contribution is None:
        return None
    epoch = contribution.epochs.get(row.origin)
    if epoch is None or row.origin not in contribution.versions:
        return None
    return copy_of(row, epoch)


def holds(answer: ReplicateResponse) -> bool:
    """Does the target that answered the copy with ``answer`` hold the write (or a newer one)?"""
    return answer.held_from == 0 and answer.applied + answer.ignored >= 1
