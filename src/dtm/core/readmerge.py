"""How the answers of several nodes make one read: per key, the latest write wins.

Rule: merge every node's rows for a key by the write order ``(hlc, origin)``, tombstones
included, and keep the key only if its winner is live; a merged page is complete up to the
smallest last key among the pages that stopped early (beyond it some node's rows are unseen),
and the next page starts there.

Why a merged read that covers the token satisfies it: every write the token names was
acknowledged by (or read from) a node whose answer is in the merge, and that node holds, for
each key, that write or a later one; the winner by the total order is at least as late, on every
node alike, which is what a single replica that had applied them all would return.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dtm.core.order import winner
from dtm.wire import Row


def latest(rows: Iterable[Row | None]) -> Row | None:
    """The winning write of one key among several nodes' rows (None: no node has the key)."""
    best: Row | None = None
    for row in rows:
        if row is not None:
            best = row if best is None else winner(best, row)
    return best


def live(row: Row | None) -> Row | None:
    """The row if it is live, None if it is absent or a tombstone."""
    return None if row is None or row.deleted else row


def merge_pages(pages: Sequence[tuple[list[Row], str | None]]) -> tuple[list[Row], str | None]:
    """The live rows of one merged page in key order, and where the next page starts (None: no
    more). Each page is (rows in key order, tombstones included; its next key or None)."""
    bound: str | None = None
    for rows, nxt in pages:
        if nxt is not None and rows:
            last = rows[-1].key
            bound = last if bound is None else min(bound, last)
    by_key: dict[str, Row] = {}
    for rows, _ in pages:
        for row in rows:
            if bound is not None and row.key > bound:
                break
            held = by_key.get(row.key)
            by_key[row.key] = row if held is None else winner(held, row)
    merged = [r for k, r in sorted(by_key.items()) if not r.deleted]
    return merged, bound
