"""How one write changes a store's state: the rules every Store backend executes.

Rule: a local write is stamped ``clock.tick(now)`` after observing the caller's seen stamp and
gets version ``last_version + 1``; a replicated row keeps its ``(hlc, origin)`` and value bytes
and, only if it wins the merge, gets version ``last_version + 1``; a stamp the clock does not
admit (more than the max offset ahead, see `dtm.core.hlc.admits`) is never merged or stored: the
write is `TooFarAhead` (a client's is refused, a replicated row is held back); a client write
whose stamp would pass its deadline (`dtm.core.deadline.stamp_too_late`) is `Late`, not
stored; a replicate batch planned for another epoch of this node (``target_epoch``) is refused
whole, since it leaves out rows only that epoch held; anything else changes nothing.

These functions are pure: the backend passes the current row, the clock and the time, and writes
back exactly what they return, inside the transaction that holds the version counter.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from dtm.core.deadline import stamp_too_late, too_late
from dtm.core.hlc import HLC, physical_ms
from dtm.core.order import Outcome, merge
from dtm.errors import ErrNoDataFound, ErrNotCaughtUp, ErrSyntaxInvalidArgs, ErrTimeout
from dtm.wire import HLC_HEADER, NULL, PeerApplied, ReplicateRequest, Row


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


@dataclass(frozen=True, slots=True)
class Unchanged:
    """A write that changed nothing (a replicated row that lost, or was already here)."""

    outcome: Outcome
    state: StoreState


@dataclass(frozen=True, slots=True)
class TooFarAhead:
    """A stamp more than the max offset ahead of this node's clock: nothing merged or stored.

    The store counts it (one skew event); a client write answers `error()`, a replicated row is
    held back for the sync to deliver again once the clocks allow.
    """

    stamp: int
    ahead_ms: int
    max_offset_ms: int

    def error(self) -> ErrSyntaxInvalidArgs:
        return ErrSyntaxInvalidArgs(
            f"header {HLC_HEADER}: stamp {self.stamp} is {self.ahead_ms} ms ahead of this node's "
            f"clock; at most {self.max_offset_ms} ms is accepted"
        )


@dataclass(frozen=True, slots=True)
class Late:
    """A client write whose stamp would pass its deadline: its sender has given up on it (and
    may have sent it elsewhere), so it is not stored and the clock does not move."""

    stamp: int
    deadline_ms: int

    def error(self) -> ErrTimeout:
        late = physical_ms(self.stamp) - self.deadline_ms
        return ErrTimeout(f"the write reached its stamp {late} ms after its deadline; not applied")


def _observe(state: StoreState, seen_hlc: int, now_ms: int) -> StoreState | TooFarAhead:
    if seen_hlc <= 0:
        return state
    obs = state.clock.observe(seen_hlc, now_ms)
    if not obs.admitted:
        return TooFarAhead(seen_hlc, obs.ahead_ms, state.clock.max_offset_ms)
    return StoreState(state.node, state.last_version, obs.clock)


def local_put(
    state: StoreState,
    key: str,
    value: msgspec.Raw,
    now_ms: int,
    seen_hlc: int = 0,
    deadline_ms: int = 0,
) -> Written | TooFarAhead | Late:
    """A client's PUT accepted by this node: a fresh stamp with this node as origin."""
    return _local_write(state, key, value, False, now_ms, seen_hlc, deadline_ms)


def local_delete(
    state: StoreState,
    current: Row | None,
    key: str,
    now_ms: int,
    seen_hlc: int = 0,
    deadline_ms: int = 0,
) -> Written | ErrNoDataFound | TooFarAhead | Late:
    """A client's DELETE: a tombstone, stamped like a put. Absent or deleted keys are not found."""
    if current is None or current.deleted:
        return ErrNoDataFound(f"no key {key!r}")
    return _local_write(state, key, NULL, True, now_ms, seen_hlc, deadline_ms)


def _local_write(
    state: StoreState,
    key: str,
    value: msgspec.Raw,
    deleted: bool,
    now_ms: int,
    seen_hlc: int,
    deadline_ms: int,
) -> Written | TooFarAhead | Late:
    """A client's write: observe the caller's stamp, then a fresh stamp and the next version,
    unless that stamp would pass the write's deadline (0: none)."""
    seen = _observe(state, seen_hlc, now_ms)
    if isinstance(seen, TooFarAhead):
        return seen
    clock, stamp = seen.clock.tick(now_ms)
    if stamp_too_late(stamp, deadline_ms):
        return Late(stamp, deadline_ms)
    version = seen.last_version + 1
    row = Row(key, value, deleted, version, stamp, seen.node)
    return Written(row, StoreState(seen.node, version, clock))


def apply_replicated(
    state: StoreState, current: Row | None, incoming: Row, now_ms: int
) -> Written | Unchanged | TooFarAhead:
    """A row copied from another node: merged by the LWW rule, never re-stamped.

    The clock observes the incoming stamp either way, so this node's later writes order after it;
    a row the clock does not admit is held back (not stored, not merged).
    """
    seen = _observe(state, incoming.hlc, now_ms)
    if isinstance(seen, TooFarAhead):
        return seen
    outcome = merge(current, incoming)
    if outcome is not Outcome.APPLY:
        return Unchanged(outcome, seen)
    version = seen.last_version + 1
    value = NULL if incoming.deleted else incoming.value
    row = Row(incoming.key, value, incoming.deleted, version, incoming.hlc, incoming.origin)
    return Written(row, StoreState(seen.node, version, seen.clock))


def wrong_epoch(epoch: str, batch: ReplicateRequest) -> ErrNotCaughtUp | None:
    """A batch planned for another epoch of this node (it was wiped since): refused whole.

    Such a batch leaves out the rows the sync knew the old epoch to hold and moves ``applied``
    over them; taken here, it would claim the source's feed without its rows."""
    if batch.target_epoch is None or batch.target_epoch == epoch:
        return None
    return ErrNotCaughtUp(
        f"replicate batch from {batch.source} was planned for epoch {batch.target_epoch} of this "
        f"node, which is at epoch {epoch}: its feed must be read again"
    )


def applied_through(source_version: int, held_versions: list[int]) -> int:
    """How far a batch brings its source's feed: all of it, or nothing if a row was held back
    (a feed keeps each key's newest write only: the held row may supersede a write below it
    that the batch does not carry, so no version of the batch is known to be held)."""
    if not held_versions:
        return source_version
    return 0


def advance_applied(current: PeerApplied | None, epoch: str, version: int) -> PeerApplied:
    """How far this node has applied a peer's feed: a new epoch restarts it, else it only grows."""
    if current is None or current.epoch != epoch:
        return PeerApplied(epoch, version)
    return PeerApplied(epoch, max(current.version, version))


def batch_too_late(state: StoreState, deadline_ms: int, now_ms: int) -> ErrTimeout | None:
    """A replicate or purge call past its deadline by more than the clock tolerance: refused
    whole when the writer reaches it (its rows keep their stamps, so the clock decides)."""
    tolerance = state.clock.max_offset_ms
    if not too_late(deadline_ms, now_ms, tolerance):
        return None
    return ErrTimeout(
        f"the write call reached the writer {now_ms - deadline_ms} ms after its deadline "
        f"(tolerance {tolerance} ms); not applied"
    )
