"""Hybrid logical clock (Kulkarni et al., 2014), packed into one integer, bounded by a max offset.

Rule: a stamp is ``physical_ms << 16 | logical`` in 0..2**63-1; a local stamp is
``max(last + 1, now << 16)`` (a full logical part carries into the physical part, so stamps stay
strictly monotonic); a remote stamp is merged only if `admits` it: its physical part is at most
``max_offset_ms`` ahead of the receiver's physical clock. A stamp further ahead is refused and the
clock does not move, so no request can push a clock (or a stored row) out of range.

The physical time is always an argument: this module never reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from dtm.errors import ErrInternal

LOGICAL_BITS = 16
LOGICAL_MASK = (1 << LOGICAL_BITS) - 1
MAX_STAMP = (1 << 63) - 1  # SQLite's integers (= wire.MAX_INT): every boundary accepts 0..MAX_STAMP
DEFAULT_MAX_OFFSET_MS = 500


def pack(physical_ms: int, logical: int = 0) -> int:
    """Build a stamp from its two parts."""
    if physical_ms < 0 or not 0 <= logical <= LOGICAL_MASK:
        raise ValueError(f"bad HLC parts: {physical_ms}, {logical}")
    return (physical_ms << LOGICAL_BITS) | logical


def physical_ms(stamp: int) -> int:
    """The wall-clock milliseconds part of a stamp."""
    return stamp >> LOGICAL_BITS


def logical(stamp: int) -> int:
    """The logical counter part of a stamp."""
    return stamp & LOGICAL_MASK


def ahead_ms(stamp: int, now_ms: int) -> int:
    """How far ``stamp`` is ahead of the physical clock ``now_ms`` (0 if not ahead)."""
    return max(0, physical_ms(stamp) - now_ms)


def admits(stamp: int, now_ms: int, max_offset_ms: int) -> bool:
    """The one skew decision: may a stamp from elsewhere be merged into a clock at ``now_ms``?"""
    return 0 <= stamp <= MAX_STAMP and ahead_ms(stamp, now_ms) <= max_offset_ms


@dataclass(frozen=True, slots=True)
class Observed:
    """The result of observing a remote stamp: merged iff ``admitted``."""

    clock: HLC
    ahead_ms: int  # how far the remote stamp was ahead of our physical clock (0 if not ahead)
    admitted: bool  # False: too far ahead; ``clock`` is unchanged and the stamp must not be stored


@dataclass(frozen=True, slots=True)
class HLC:
    """An immutable clock state: the highest stamp issued or observed."""

    last: int = 0
    max_offset_ms: int = DEFAULT_MAX_OFFSET_MS

    def tick(self, now_ms: int) -> tuple[HLC, int]:
        """Issue a stamp for a local event at physical time ``now_ms``.

        Past 2**63-1 no stamp fits: that is a server fault (ErrInternal), never the caller's.
        """
        stamp = max(self.last + 1, now_ms << LOGICAL_BITS)
        if stamp > MAX_STAMP:
            raise ErrInternal("the clock cannot issue a stamp beyond 2**63-1")
        return HLC(stamp, self.max_offset_ms), stamp

    def observe(self, remote: int, now_ms: int) -> Observed:
        """Take in a stamp from elsewhere: if admitted, later local stamps will order after it."""
        ahead = ahead_ms(remote, now_ms)
        if not admits(remote, now_ms, self.max_offset_ms):
            return Observed(self, ahead, False)
        clock = self if remote <= self.last else HLC(remote, self.max_offset_ms)
        return Observed(clock, ahead, True)
