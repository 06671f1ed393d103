"""Anti-entropy: find what the cursor path missed by comparing digests, and plan the repair.

Rule: a bucket needs repair iff its digest differs between nodes; in it, each key's winner is the
greatest ``(hlc, origin)`` over every node's row, and a node lacks it iff its row for that key is
absent or a different write; the winner goes to it through the ordinary merge rule. A pass
repairs nothing when a node's digest names another epoch than the sync last read from it (wiped
or restored since): the cursor path copies that node again from its feed's start.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass

from dtm.core.order import winner, write_id
from dtm.wire import BucketRows, Digest, Row


@dataclass(frozen=True, slots=True)
class Repair:
    """Rows ``holder`` has that ``target`` lacks (sent as a batch from ``holder``)."""

    holder: str
    holder_epoch: str
    target: str
    rows: tuple[Row, ...]


def moved_epochs(known: Mapping[str, str], digests: Mapping[str, Digest]) -> list[str]:
    """The nodes whose digest names another epoch than ``known`` (the one the sync last read
    from each; none known counts as another): a pass over them would copy a wiped node bucket by
    bucket while the cursor path copies all of it again, so it waits for the cursor path."""
    return sorted(n for n, d in digests.items() if known.get(n) != d.epoch)


def differing_buckets(digests: Mapping[str, Digest]) -> list[int]:
    """Indexes of the buckets whose digest is not the same on every node."""
    lists = [d.buckets for d in digests.values()]
    if len(lists) < 2:
        return []
    width = min(len(x) for x in lists)
    return [i for i in range(width) if len({x[i] for x in lists}) > 1]


def plan_repairs(
    buckets: Mapping[str, BucketRows], skip: Container[tuple[str, int, str]] = ()
) -> list[Repair]:
    """What each node lacks of one bucket, given every node's rows of it.

    ``skip`` names writes ``(key, hlc, origin)`` that must not be spread (tombstones being purged).
    """
    best: dict[str, Row] = {}
    holder: dict[str, str] = {}
    have: dict[str, dict[str, tuple[int, str]]] = {}
    for node in sorted(buckets):
        mine = have.setdefault(node, {})
        for row in buckets[node].rows:
            mine[row.key] = write_id(row)
            cur = best.get(row.key)
            if cur is None or winner(cur, row) is not cur:
                best[row.key] = row
                holder[row.key] = node
    plans: dict[tuple[str, str], list[Row]] = {}
    for key in sorted(best):
        row = best[key]
        if (row.key, row.hlc, row.origin) in skip:
            continue
        for node in sorted(buckets):
            if have[node].get(key) != write_id(row):
                plans.setdefault((holder[key], node), []).append(row)
    return [Repair(h, buckets[h].epoch, t, tuple(rows)) for (h, t), rows in sorted(plans.items())]
