"""The write order and the merge rule of last-writer-wins.

Rule: an incoming row replaces the local one iff its ``(hlc, origin)`` is greater; an equal pair
is the same write (a no-op); a smaller one loses. A delete is a tombstone row ordered the same way.
"""

from __future__ import annotations

from enum import Enum
from typing import Protocol, TypeVar


class Stamped(Protocol):
    """Anything with a write identity: a row, a planned write."""

    @property
    def hlc(self) -> int: ...

    @property
    def origin(self) -> str: ...


def write_id(row: Stamped) -> tuple[int, str]:
    """The total order of writes, identical on every node: stamp first, origin node breaks ties."""
    return (row.hlc, row.origin)


class Outcome(Enum):
    """What merging an incoming row into the local state does."""

    APPLY = "apply"  # incoming is later: it replaces the local row (and gets a new local version)
    SAME = "same"  # the very same write is already here: nothing changes, no version bump
    LOSE = "lose"  # the local row is later: incoming is discarded, nothing changes


def merge(local: Stamped | None, incoming: Stamped) -> Outcome:
    """Decide the fate of ``incoming`` against the ``local`` row for the same key."""
    if local is None:
        return Outcome.APPLY
    mine, theirs = write_id(local), write_id(incoming)
    if theirs > mine:
        return Outcome.APPLY
    if theirs == mine:
        return Outcome.SAME
    return Outcome.LOSE


R = TypeVar("R", bound=Stamped)


def winner(a: R, b: R) -> R:
    """The later of two writes to the same key (commutative, associative, idempotent)."""
    return b if write_id(b) > write_id(a) else a
