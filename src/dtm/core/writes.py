"""How one write changes a store's state: the rules every Store backend executes.

Rule: a local write is stamped ``clock.tick(now)`` after observing the caller's seen stamp and
gets version ``last_version + 1``; a replicated row keeps its ``(hlc, origin)`` and value bytes
and, only if it wins the merge, gets version ``last_version + 1``; anything else changes nothing.

These functions are pure: the backend passes the current row, the clock and the time, and writes
back exactly what they return, inside the transaction that holds the version counter.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from dtm.core.hlc import HLC
from dtm.core.order import Outcome, merge
from dtm.errors import ErrNoDataFound
from dtm.wire import NULL, PeerApplied, Row


@dataclass(frozen=True, slots=True)
class StoreState:
    """The part of a store's state that a write reads and advances."""

    node: str
    last_version: int
    clock: HLC


@dataclass(frozen=True, slots=True)
class Written:
    """A write that changed the store: the new row to save and the state after it."""

    row: Row
    state: StoreState
    skew_ms: int = 0  # >0: the write observed a stamp this far ahead of our physical clock
    skewed: bool = False


@dataclass(frozen=True, slots=True)
class Unchanged:
    """A write that changed nothing (a replicated row that lost, or was already here)."""

    outcome: Outcome
    state: StoreState
    skew_ms: int = 0
    skewed: bool = False


def _observe(state: StoreState, seen_hlc: int, now_ms: int) -> tuple[StoreState, int, bool]:
    if seen_hlc <= 0:
        return state, 0, False
    obs = state.clock.observe(seen_hlc, now_ms)
    return StoreState(state.node, state.last_version, obs.clock), obs.skew_ms, obs.skewed


def local_put(
    state: StoreState, key: str, value: msgspec.Raw, now_ms: int, seen_hlc: int = 0
) -> Written:
    """A client's PUT accepted by this node: a fresh stamp with this node as origin."""
    state, skew, skewed = _observe(state, seen_hlc, now_ms)
    clock, stamp = state.clock.tick(now_ms)
    version = state.last_version + 1
    row = Row(key, value, False, version, stamp, state.node)
    return Written(row, StoreState(state.node, version, clock), skew, skewed)


def local_delete(
    state: StoreState, current: Row | None, key: str, now_ms: int, seen_hlc: int = 0
) -> Written | ErrNoDataFound:
    """A client's DELETE: a tombstone, stamped like a put. Absent or deleted keys are not found."""
    if current is None or current.deleted:
        return ErrNoDataFound(f"no key {key!r}")
    state, skew, skewed = _observe(state, seen_hlc, now_ms)
    clock, stamp = state.clock.tick(now_ms)
    version = state.last_version + 1
    row = Row(key, NULL, True, version, stamp, state.node)
    return Written(row, StoreState(state.node, version, clock), skew, skewed)


def apply_replicated(
    state: StoreState, current: Row | None, incoming: Row, now_ms: int
) -> Written | Unchanged:
    """A row copied from another node: merged by the LWW rule, never re-stamped.

    The clock observes the incoming stamp either way, so this node's later writes order after it.
    """
    state, skew, skewed = _observe(state, incoming.hlc, now_ms)
    outcome = merge(current, incoming)
    if outcome is not Outcome.APPLY:
        return Unchanged(outcome, state, skew, skewed)
    version = state.last_version + 1
    value = NULL if incoming.deleted else incoming.value
    row = Row(incoming.key, value, incoming.deleted, version, incoming.hlc, incoming.origin)
    return Written(row, StoreState(state.node, version, state.clock), skew, skewed)


def advance_applied(current: PeerApplied | None, epoch: str, version: int) -> PeerApplied:
    """How far this node has applied a peer's feed: a new epoch restarts it, else it only grows."""
    if current is None or current.epoch != epoch:
        return PeerApplied(epoch, version)
    return PeerApplied(epoch, max(current.version, version))
