"""When a forwarded write is too late to apply, and when its sender may send it elsewhere.

Rule: a client write with a deadline D (unix ms, set by the hop that waits for it) is stamped
only with a stamp whose physical part is at most D (checked by the writer, at the moment it
stamps), and the balancer sends a write that may have reached a node to another one only once
its clock has passed D by the max clock offset, raising ``X-Dtm-Hlc`` to ``ceiling(D)``; so any
copy of the first attempt orders before the retry and before every write that came after it.
And only while its caller still waits: never once the caller has left, nor when the retry could
not go before the caller's own deadline (`retry_allowed`); every attempt's D is at most that one.

Why: a write the sender gave up on may sit in a stopped node's queue and commit on resume. Its
stamp is at most ``ceiling(D)`` whenever it commits; the retry observes ``ceiling(D)`` and so is
stamped above it, and so is every later write of the session (which carries the retry's stamp)
and every write begun after the retry by anyone (its node's clock is past D, within the offset).
Replicated rows keep their stamps, so a late replicate or purge is refused by the clock instead:
more than the tolerance past D (``too_late``). A caller that stopped waiting (its connection
closed, or its deadline passed) writes again at once, and that write orders after every copy of
this one only if no copy is stamped after the caller gave up: so nothing is sent for it then.
"""

from __future__ import annotations

from dtm.core.hlc import LOGICAL_MASK, MAX_STAMP, physical_ms


def too_late(deadline_ms: int, now_ms: int, tolerance_ms: int) -> bool:
    """True if a write with this deadline (0: none) must be refused at ``now_ms``."""
    return deadline_ms > 0 and now_ms > deadline_ms + tolerance_ms


def stamp_too_late(stamp: int, deadline_ms: int) -> bool:
    """True if a client write with this deadline (0: none) may not carry ``stamp``."""
    return deadline_ms > 0 and physical_ms(stamp) > deadline_ms


def ceiling(deadline_ms: int) -> int:
    """The highest stamp a client write with this deadline can carry."""
    return min(MAX_STAMP, (deadline_ms << 16) | LOGICAL_MASK)


def retry_after_ms(deadline_ms: int, max_offset_ms: int) -> int:
    """The sender's clock time after which a write with this deadline may go to another node."""
    return deadline_ms + max_offset_ms


def retry_floor(client_hlc: int, deadline_ms: int) -> int:
    """The ``X-Dtm-Hlc`` a retry carries: the client's, raised to the first copy's ceiling."""
    return max(client_hlc, ceiling(deadline_ms))


def attempt_deadline(now_ms: int, timeout_ms: int, caller_deadline_ms: int) -> int:
    """The deadline of one attempt: the sender's timeout, never past the caller's (0: none)."""
    mine = now_ms + timeout_ms
    return min(mine, caller_deadline_ms) if caller_deadline_ms > 0 else mine


def retry_allowed(
    reached_ms: int, max_offset_ms: int, caller_deadline_ms: int, caller_left: bool
) -> bool:
    """May a write that may have reached a node (deadline ``reached_ms``) go to another one?"""
    if caller_left:
        return False
    at = retry_after_ms(reached_ms, max_offset_ms)
    return caller_deadline_ms <= 0 or at < caller_deadline_ms
