"""Crash points of the sync loop: where a test harness may have the sync process die.

Rule: a crash point names a step boundary of the loop, the moment a call's answer is back and
before the loop takes it in, and a count: the process dies the count-th time it passes that
boundary (the call had its effect on the node; the sync's memory of it is lost). Only the
process's environment arms one (`ENV`, read once at start-up); nothing a request carries does.
The service (`dtm.sync.service`) and the simulation (`tests/sim`) use the same boundaries.

    fetched   a page of a feed was read, nothing planned from it yet
    applied   a replicate batch was applied by its target, its cursor neither moved nor saved
    purged    a node purged tombstones, the sync not yet told
    repaired  an anti-entropy pass repaired rows, the sync not yet told
    saved     the cursor file was written, the loop not yet told
"""

from __future__ import annotations

from dataclasses import dataclass

from dtm.core.syncwork import Event, Fetched, Purged, Repaired, Saved, Sent
from dtm.errors import ErrSyntaxInvalidArgs

ENV = "DTM_SYNC_CRASH_AFTER"
STEPS = ("fetched", "applied", "purged", "repaired", "saved")


def step_of(ev: Event) -> str | None:
    """The boundary an answer (the event about to be stepped in) stands at; None for others."""
    if isinstance(ev, Fetched):
        return "fetched"
    if isinstance(ev, Sent):
        return "applied"
    if isinstance(ev, Purged):
        return "purged"
    if isinstance(ev, Repaired):
        return "repaired"
    if isinstance(ev, Saved):
        return "saved"
    return None


@dataclass
class CrashPoint:
    """Die the ``count``-th time the loop passes ``step``."""

    step: str
    count: int
    passed: int = 0

    def due(self, ev: Event) -> bool:
        """Take in one answer; True exactly when this one is the crash point."""
        if step_of(ev) != self.step:
            return False
        self.passed += 1
        return self.passed == self.count


def parse(text: str) -> CrashPoint | None:
    """``STEP:COUNT`` (``applied:3``); empty: none."""
    text = text.strip()
    if not text:
        return None
    step, sep, count = text.partition(":")
    if step not in STEPS or (sep and not count.isdigit()) or (sep and int(count) < 1):
        raise ErrSyntaxInvalidArgs(
            f"${ENV} must be STEP[:COUNT] with STEP one of {', '.join(STEPS)} and COUNT >= 1,"
            f" not {text[:60]!r}"
        )
    return CrashPoint(step, int(count) if sep else 1)
