"""When a forwarded write has arrived too late to apply.

Rule: a write whose deadline (unix ms, set by the hop that waits for it) is more than the clock
tolerance in the past is refused, never applied: its sender has given up and may have retried it
elsewhere, so applying it now would order a stale duplicate after newer writes of the key.
"""

from __future__ import annotations


def too_late(deadline_ms: int, now_ms: int, tolerance_ms: int) -> bool:
    """True if a write with this deadline (0: none) must be refused at ``now_ms``."""
    return deadline_ms > 0 and now_ms > deadline_ms + tolerance_ms
