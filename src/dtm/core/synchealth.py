"""Which nodes the sync calls now: a node whose call failed is left alone for a backoff.

Rule: a failed call puts its node out of reach for a backoff that starts at ``backoff_min_ms``
and doubles up to ``backoff_max_ms``, unless the sync itself was paused when the call timed out
(then nothing is held against the node); the first answer after failures brings it back at
once. A node not yet reached since this process started was starting too: its failures and
return are logged at INFO, any other node's at WARNING (every later failure at DEBUG).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from dtm.core.syncwork import DEBUG, INFO, WARNING, LoopConfig, Note


def quoted(text: str) -> str:
    """Untrusted text (a node's error message) for a log line: JSON-quoted, so it cannot end the
    line or carry control characters."""
    return json.dumps(text)


@dataclass
class Health:
    down_until: int = 0
    backoff: int = 0
    failures: int = 0
    down_since: int = 0
    last_error: str = ""


class Reach:
    """Each node's health, and the log lines its changes call for (appended to ``notes``)."""

    def __init__(self, nodes: Iterable[str], cfg: LoopConfig, notes: list[Note]) -> None:
        self.cfg = cfg
        self.health = {n: Health() for n in nodes}
        self.notes = notes
        self._reached: set[str] = set()  # nodes that answered since this process started

    def reachable(self, members: Iterable[str], now: int) -> list[str]:
        h = self.health
        return [n for n in members if h[n].down_until <= now]

    def ok(self, node: str, now: int) -> None:
        """``node`` answered."""
        h = self.health[node]
        if h.failures:
            known = node in self._reached
            self.notes.append(
                Note(
                    WARNING if known else INFO,
                    f"{node} is reachable {'again' if known else 'now'} (after"
                    f" {h.failures} failed calls, {(now - h.down_since) / 1000:.1f} s)",
                )
            )
        self._reached.add(node)
        if h.failures or h.last_error:
            self.health[node] = Health()

    def failed(self, node: str, call: str, error: str, paused: bool, now: int) -> None:
        """A ``call`` to ``node`` failed with ``error`` (``paused``: while this process was)."""
        if paused:
            self.notes.append(
                Note(INFO, f"{node} {call} timed out while this sync process was paused: retrying")
            )
            return
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
        self.notes.append(Note(level, text))
        h.failures += 1
