"""Rule: peers are tried healthy ones first, in turn from ``turn``, then those in back-off,
soonest-recovering first; a failure backs a peer off for BASE_S doubling up to MAX_S, and an
answer ends its back-off.

The handler's choice among its load balancers (`dtm.handler.upstream`). A peer in back-off is
still tried when every peer is, so a short outage of all of them costs no more than one round.
Pure: time (``now``, seconds on any monotonic clock) is an argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

BASE_S: Final = 1.0
MAX_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class Mark:
    """One peer's record: failures in a row, and until when it is skipped."""

    failures: int = 0
    until: float = 0.0


HEALTHY: Final = Mark()


def order(marks: Sequence[Mark], now: float, turn: int = 0) -> list[int]:
    """The indexes of ``marks`` in the order to try them."""
    n = len(marks)
    rotated = [(turn + k) % n for k in range(n)] if n else []
    ready = [i for i in rotated if marks[i].until <= now]
    waiting = sorted((i for i in rotated if marks[i].until > now), key=lambda i: marks[i].until)
    return ready + waiting


def failed(mark: Mark, now: float) -> Mark:
    """The record after a failure at ``now``."""
    pause = min(MAX_S, BASE_S * 2 ** min(mark.failures, 16))
    return Mark(mark.failures + 1, now + pause)
