"""Which nodes the sync calls now: a node whose call failed is left alone for a backoff.

Rule: a failed call puts its node out of reach for a backoff that starts at ``backoff_min_ms``
and doubles up to ``backoff_max_ms``, unless the sync itself was paused when the call timed out
(then nothing is held against the node); the first answer after failures brings it back at
once. A node not yet reached since this process started was starting too: its failures and
return are logged at INFO, any other node's at WARNING (every later failure at DEBUG).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dtm.core.syncwork import DEBUG, INFO, WARNING, LoopConfig, Note, quoted


@dataclass
class Health:
    down_until: int = 0
    backoff: int = 0
    failures: int = 0
    down_since: int = 0
    last_error: str = ""


class Reach:
    """Each node's health, and the log line each change of it calls for."""

    def __init__(self, nodes: Iterable[str], cfg: LoopConfig) -> None:
        self.cfg = cfg
        self.health = {n: Health() for n in nodes}
        self._reached: set[str] = set()  # nodes that answered since this process started

    def reachable(self, members: Iterable[str], now: int) -> list[str]:
        h = self.health
        return [n for n in members if h[n].down_until <= now]

    def ok(self, node: str, now: int) -> Note | None:
        """``node`` answered: the note of its return, if it had failed."""
        h = self.health[node]
        note = None
        if h.failures:
            known = node in self._reached
            note = Note(
                WARNING if known else INFO,
                f"{node} is reachable {'again' if known else 'now'} (after"
                f" {h.failures} failed calls, {(now - h.down_since) / 1000:.1f} s)",
            )
        self._reached.add(node)
        if h.failures or h.last_error:
            self.health[node] = Health()
        return note

    def failed(self, node: str, call: str, error: str, paused: bool, now: int) -> Note:
        """A ``call`` to ``node`` failed with ``error`` (``paused``: while this process was)."""
        if paused:
            text = f"{node} {call} timed out while this sync process was paused: retrying"
            return Note(INFO, text)
        cfg, h = self.cfg, self.health[node]
        h.backoff = min(cfg.backoff_max_ms, h.backoff * 2 or cfg.backoff_min_ms)
        h.down_until = now + h.backoff
        h.last_error = error
        if not h.failures:
            h.down_since = now
            level = WARNING if node in self._reached else INFO
            text = f"{node} {call} failed (retrying with backoff): {quoted(error)}"
        else:
            level = DEBUG
            text = f"{node} {call} failed again (retry in {h.backoff} ms): {quoted(error)}"
        h.failures += 1
        return Note(level, text)
