"""How the request handler deletes a task the session read: on the node that served it live.

Rule: send the DELETE to the node that served the row live (pinned, no token: its tombstone
orders after what the session saw, since it carries at least the row's stamp), or through the
balancer with the session token if that node is unreachable; a node that answers "not live"
(deleted meanwhile) or "not caught up" sends the handler to read the key again: gone is done,
live goes to the node that served it; after 3 deletes still live is ErrNotCaughtUp.
"""

from __future__ import annotations

from dataclasses import dataclass

from dtm.core.readplan import Fail
from dtm.errors import ErrNotCaughtUp, ErrUnavailable


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


def next_delete(rounds_left: int, outcome: str, pinned: bool) -> DeleteStep:
    """After a DELETE answered ``outcome`` ("deleted", "not live", "behind", "unreachable"):
    a node that held the row live but does not any more (deleted meanwhile, by us or anyone)
    or is not caught up sends us to read it back; an unreachable pinned node to the balancer."""
    if outcome == "deleted":
        return Deleted()
    if outcome == "unreachable" and pinned:
        return DeleteOn(None)
    if outcome == "unreachable":
        return Fail(ErrUnavailable("no data node took the delete"))
    if rounds_left <= 0:
        return Fail(
            ErrNotCaughtUp("the task stays live on a node the delete cannot reach; try again")
        )
    return ReadBack()


def after_read_back(row_live: bool, node: str | None) -> DeleteStep:
    """The key read back: gone is deleted; live goes to the node that served it."""
    return DeleteOn(node) if row_live else Deleted()
