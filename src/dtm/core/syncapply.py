"""How a store applies one replicated batch: `dtm.core.writes.apply_replicated` over its rows.

Rule: the rows are merged in batch order, each against the newest row of its key (the store's,
or an earlier row of the same batch), at the one moment ``now_ms`` the batch is applied, exactly
as `apply_replicated` would merge them one by one; the winners get consecutive versions and keep
their stamps; a row the clock does not admit is held back (not merged, not stored).

The result names every row written with the row it replaces, so a backend writes them in one
statement and counts live rows and tombstones without reading anything again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dtm.core.hlc import HLC, LOGICAL_MASK, MAX_STAMP, admits, pack
from dtm.core.order import Outcome, merge
from dtm.core.writes import StoreState
from dtm.wire import NULL, Row


@dataclass(frozen=True, slots=True)
class BatchApplied:
    """What a batch does: the state after it, the rows written (each with the row it replaced,
    None for a new key), and the rows it did not write."""

    state: StoreState
    written: list[tuple[Row, Row | None]]
    ignored: int  # rows that lost or were already here (no version, no write)
    losers: list[Row]  # the incoming rows that lost to a later write of their key
    held: list[int]  # the versions (at the source) of the rows held back, in batch order


def admitted_up_to(now_ms: int, offset: int) -> int | None:
    """The largest stamp `admits` takes at ``now_ms``: it takes every stamp from 0 up to there
    ("at most ``offset`` ms ahead"). Checked against `admits` itself at the bound and past it; None
    if they disagree, and then each stamp is asked."""
    if now_ms < 0 or offset < 0:
        return None
    bound = min(MAX_STAMP, pack(now_ms + offset, LOGICAL_MASK))
    if not admits(bound, now_ms, offset):
        return None
    if bound < MAX_STAMP and admits(bound + 1, now_ms, offset):
        return None
    return bound


def apply_batch(
    state: StoreState, current: Mapping[str, Row], rows: Sequence[Row], now_ms: int
) -> BatchApplied:
    """Merge ``rows`` into a store whose rows for their keys are ``current`` (a key missing there
    is absent from the store)."""
    version, clock = state.last_version, state.clock
    top, offset = clock.last, clock.max_offset_ms
    written: list[tuple[Row, Row | None]] = []
    mine: dict[str, Row] = {}  # rows written by this batch, newest per key
    losers: list[Row] = []
    held: list[int] = []
    ignored = 0
    bound = admitted_up_to(now_ms, offset)
    for row in rows:
        stamp = row.hlc
        if not (0 <= stamp <= bound if bound is not None else admits(stamp, now_ms, offset)):
            held.append(row.version)
            continue
        if stamp > top:
            top = stamp  # the clock observes every admitted stamp, winner or not
        key = row.key
        old = mine.get(key)
        if old is None:
            old = current.get(key)
        outcome = merge(old, row)
        if outcome is Outcome.APPLY:
            version += 1
            value = NULL if row.deleted else row.value
            new = Row(key, value, row.deleted, version, stamp, row.origin)
            written.append((new, old))
            mine[key] = new
        else:
            ignored += 1
            if outcome is Outcome.LOSE:
                losers.append(row)
    if version != state.last_version or top != clock.last:
        new_clock = clock if top == clock.last else HLC(top, offset)
        state = StoreState(state.node, version, new_clock)
    return BatchApplied(state, written, ignored, losers, held)
