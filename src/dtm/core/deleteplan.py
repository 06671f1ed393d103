"""How the request handler deletes a task the session read: on the node that served it live.

Rule: send the DELETE to the node that served the row live (pinned, no token: its tombstone
orders after what the session saw, since it carries at least the row's stamp), or through the
balancer with the session token if that node is unreachable; a node that answers "not live"
(deleted meanwhile) or "not caught up" sends the handler to read the key again: gone is done,
live goes to the node that served it; after 3 deletes still live is ErrNotCaughtUp. A node whose
clock is fenced (it refuses writes) is replaced by the first unfenced node, pinned: the DELETE
carries the session's HLC, so that node's tombstone still orders after what the session saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dtm.core.readplan import Fail
from dtm.errors import ErrClockSkew, ErrNotCaughtUp, ErrUnavailable


@dataclass(frozen=True, slots=True)
class DeleteOn:
    """Send the DELETE to ``node`` (pinned, no token: it served the row live), or through the
    balancer with the session token (None: the node that served it is unreachable)."""

    node: str | None


@dataclass(frozen=True, slots=True)
class ReadBack:
    """Read the key again (the session read): gone means deleted; live names where it is."""


@dataclass(frozen=True, slots=True)
class Deleted:
    pass


DeleteStep = DeleteOn | ReadBack | Deleted | Fail


def next_delete(
    rounds_left: int, outcome: str, pinned: bool, elsewhere: str | None = None
) -> DeleteStep:
    """After a DELETE answered ``outcome`` ("deleted", "not live", "behind", "unreachable",
    "fenced"): a node that held the row live but does not any more (deleted meanwhile, by us or
    anyone) or is not caught up sends us to read it back; an unreachable pinned node to the
    balancer; a fenced one (or a balancer whose last node was fenced) to ``elsewhere``, the first
    node not known to be fenced (None: there is none, or the client pinned the node)."""
    if outcome == "deleted":
        return Deleted()
    if outcome == "fenced":
        if elsewhere is not None and rounds_left > 0:
            return DeleteOn(elsewhere)
        return Fail(
            ErrClockSkew(
                "every data node that could take the delete refuses writes: its clock is off "
                "from its peers; fix the clock (see `todo cluster status`) or try again"
            )
        )
    if outcome == "unreachable" and pinned:
        return DeleteOn(None)
    if outcome == "unreachable":
        return Fail(ErrUnavailable("no data node took the delete"))
    if rounds_left <= 0:
        return Fail(
            ErrNotCaughtUp("the task stays live on a node the delete cannot reach; try again")
        )
    return ReadBack()


def after_read_back(
    row_live: bool,
    node: str | None,
    fenced: frozenset[str] = frozenset(),
    nodes: Sequence[str] = (),
) -> DeleteStep:
    """The key read back: gone is deleted; live goes to the node that served it, or, if that
    node is fenced, to the first unfenced one (the balancer if none is left)."""
    if not row_live:
        return Deleted()
    return DeleteOn(unfenced(nodes, fenced) if node in fenced else node)


def unfenced(nodes: Sequence[str], fenced: frozenset[str]) -> str | None:
    """The first of ``nodes`` not known to be fenced (None: every one is)."""
    return next((n for n in nodes if n not in fenced), None)
