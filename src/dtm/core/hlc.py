"""Hybrid logical clock (Kulkarni et al., 2014), packed into one integer.

Rule: a stamp is ``physical_ms << 16 | logical``; a new local stamp is
``max(last + 1, physical << 16)``, and observing a remote stamp moves ``last`` up to it, so stamps
never go backwards and every stamp issued after observing ``r`` is greater than ``r``.

The physical time is always an argument: this module never reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

LOGICAL_BITS = 16
LOGICAL_MASK = (1 << LOGICAL_BITS) - 1
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


@dataclass(frozen=True, slots=True)
class Observed:
    """The result of observing a remote stamp."""

    clock: HLC
    skew_ms: int  # how far the remote stamp was ahead of our physical clock (0 if not ahead)
    skewed: bool  # skew_ms exceeded the clock's max offset: report it, but still merge


@dataclass(frozen=True, slots=True)
class HLC:
    """An immutable clock state: the highest stamp issued or observed."""

    last: int = 0
    max_offset_ms: int = DEFAULT_MAX_OFFSET_MS

    def tick(self, now_ms: int) -> tuple[HLC, int]:
        """Issue a stamp for a local event at physical time ``now_ms``."""
        stamp = max(self.last + 1, now_ms << LOGICAL_BITS)
        return HLC(stamp, self.max_offset_ms), stamp

    def observe(self, remote: int, now_ms: int) -> Observed:
        """Take in a stamp from elsewhere: later local stamps will order after it."""
        ahead = physical_ms(remote) - now_ms
        skew = ahead if ahead > 0 else 0
        clock = self if remote <= self.last else HLC(remote, self.max_offset_ms)
        return Observed(clock, skew, skew > self.max_offset_ms)
