"""When a tombstone may be purged from every node: decided from cursors, never by age.

Rule: a tombstone is purgeable iff every member node is known to hold it (or a later write of its
key) at its current epoch, as of its version ``h`` (the version it had in that node's feed, or the
node's last version when it acknowledged a batch carrying it), and every cursor out of that node
has passed ``h`` (so no feed still owes anyone an older row of the key); a decided purge is sent
once it has stayed decided for the fence (the replicate call timeout), so a batch read before the
decision (by this or another sync process) can no longer land after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dtm.core.syncplan import Cursor, Pair, cursor_of
from dtm.wire import RowId


@dataclass(frozen=True, slots=True)
class Held:
    """A node holds the tombstone (or later) since its version ``version`` at ``epoch``."""

    epoch: str
    version: int


@dataclass(frozen=True, slots=True)
class Candidate:
    """A tombstone seen in some feed, waiting until every node holds it."""

    rid: RowId
    held: Mapping[str, Held] = field(default_factory=dict)
    purged_on: frozenset[str] = frozenset()


def note_held(c: Candidate, node: str, epoch: str, version: int) -> Candidate:
    """Record that ``node`` holds the tombstone as of ``version``; a new epoch replaces the old."""
    old = c.held.get(node)
    if old is not None and old.epoch == epoch and old.version <= version:
        return c
    held = dict(c.held)
    held[node] = Held(epoch, version)
    return Candidate(c.rid, held, c.purged_on)


def waiting_for(
    c: Candidate,
    members: Iterable[str],
    epochs: Mapping[str, str],
    cursors: Mapping[Pair, Cursor],
) -> list[str]:
    """Why the tombstone may not be purged yet, one reason per blocking node (empty: purge)."""
    nodes = sorted(members)
    reasons: list[str] = []
    for x in nodes:
        h = c.held.get(x)
        epoch = epochs.get(x)
        if epoch is None:
            reasons.append(f"{x}: not reached yet")
            continue
        if h is None or h.epoch != epoch:
            reasons.append(f"{x}: has not applied it")
            continue
        behind = [t for t in nodes if t != x and cursor_of(cursors, x, t, epochs) < h.version]
        if behind:
            reasons.append(f"{x}: feed not yet applied up to {h.version} by {', '.join(behind)}")
    return reasons


def purge_targets(c: Candidate, members: Iterable[str]) -> list[str]:
    """The member nodes a decided purge has still to be sent to."""
    return sorted(set(members) - c.purged_on)


def fence_passed(decided_ms: int, now_ms: int, fence_ms: int) -> bool:
    """A purge decided at ``decided_ms`` may be sent at ``now_ms``."""
    return now_ms - decided_ms >= fence_ms
