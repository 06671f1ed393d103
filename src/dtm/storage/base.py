"""The storage contract every backend meets (tests/storage runs one suite against each).

Rule: a backend only executes `dtm.core.writes`; it owns durability and atomicity, never policy.
A write is acknowledged (its awaitable returns) only once it is durable; versions are assigned in
the transaction that commits the row, so a reader never sees version V+1 without V.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import msgspec

from dtm.wire import PeerApplied, ReplicateRequest, ReplicateResponse, Row, RowId

# What a row's JSON adds to its key, value and origin bytes: the field names, a bool and three
# integers of at most 19 digits, and a separator (104 bytes at most).
ROW_OVERHEAD = 128


def row_bytes(row: Row) -> int:
    """An upper bound of the bytes ``row`` takes in a page's JSON (keys and names are ASCII)."""
    return len(row.key) + len(row.value) + len(row.origin) + ROW_OVERHEAD


def page_is_full(rows: list[Row], max_bytes: int | None) -> bool:
    """True when a page of ``rows`` stopped at ``max_bytes``: more rows may follow."""
    return max_bytes is not None and sum(map(row_bytes, rows)) >= max_bytes


def take_within(rows: Iterable[Row], limit: int, max_bytes: int | None) -> list[Row]:
    """The first rows, at most ``limit``, stopping after the row whose `row_bytes` bring the total
    to ``max_bytes`` or more (so a page holds at least one row, and `page_is_full` can tell)."""
    out: list[Row] = []
    total = 0
    if limit <= 0:
        return out
    for row in rows:
        out.append(row)
        total += row_bytes(row)
        if len(out) >= limit or (max_bytes is not None and total >= max_bytes):
            break
    return out


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Counters a node reports in its status."""

    live_rows: int
    tombstones: int
    hlc: int
    skew_events: int
    applied: dict[str, PeerApplied]


class Store(Protocol):
    """A node's rows: local writes, replicated batches, point reads, scans and the change feed."""

    @property
    def node(self) -> str:
        """This node's id: the ``origin`` of every write it accepts from a client."""
        ...

    @property
    def epoch(self) -> str:
        """A random id made when the database was created: a wiped or restored store differs."""
        ...

    def last_version(self) -> int:
        """The highest version committed (0 for an empty store)."""
        ...

    def get(self, key: str) -> Row | None:
        """The row for ``key``, tombstones included; None if never written (or purged)."""
        ...

    def scan(
        self,
        after: str | None,
        limit: int,
        max_bytes: int | None = None,
        tombstones: bool = False,
    ) -> list[Row]:
        """Live rows (with ``tombstones``, deleted ones too) with key > ``after`` in key order,
        at most ``limit``, and stopping once they reach ``max_bytes`` (see `take_within`: the
        answer's memory is bounded)."""
        ...

    def changes(self, since: int, limit: int, max_bytes: int | None = None) -> list[Row]:
        """Rows with version > ``since`` in version order (tombstones too), at most ``limit``,
        and stopping once they reach ``max_bytes`` (as `take_within`).

        Each key appears at most once (a row carries only its latest version); ``limit <= 0``
        gives no rows.
        """
        ...

    def stats(self) -> StoreStats:
        """Counts for the status page."""
        ...

    async def put(
        self, key: str, value: msgspec.Raw, seen_hlc: int = 0, deadline_ms: int = 0
    ) -> Row:
        """A client write accepted by this node; returns the durable row. With a deadline (unix
        ms), raises ErrTimeout instead if the write's stamp would pass it (`dtm.core.deadline`),
        decided when the write is stamped, not when it was queued."""
        ...

    async def delete(self, key: str, seen_hlc: int = 0, deadline_ms: int = 0) -> Row:
        """A client delete; returns the durable tombstone. Raises ErrNoDataFound if not live,
        ErrTimeout past its deadline (as `put`)."""
        ...

    async def replicate(self, batch: ReplicateRequest, deadline_ms: int = 0) -> ReplicateResponse:
        """Merge another node's rows by the LWW rule, atomically, and record how far it got.

        ``losers`` lists the incoming rows that lost the merge to a later local write. Refused
        whole (ErrTimeout) if it reaches the writer more than the clock tolerance past
        ``deadline_ms``.
        """
        ...

    def digest(self, buckets: int) -> list[str]:
        """`dtm.core.digest.digest` over every row, tombstones included."""
        ...

    def bucket_rows(self, bucket: int, buckets: int) -> list[Row]:
        """Every row (tombstones included) whose key falls in ``bucket`` of ``buckets``."""
        ...

    async def purge(self, ids: list[RowId], deadline_ms: int = 0) -> int:
        """Remove each named tombstone iff the key's row is still exactly that tombstone.

        Purging bumps no version. Returns how many rows were removed. The deadline as in
        `replicate`.
        """
        ...

    async def close(self) -> None:
        """Finish pending writes and release resources."""
        ...
