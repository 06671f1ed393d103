"""Which data nodes a request tries, in which order.

Rule: round-robin over the healthy nodes, starting one node further on each request; ejected
nodes follow as a last resort; every node at most once, so attempts never exceed the node count;
for a client write (``fenced`` given), healthy unfenced nodes come first, then healthy fenced
ones (a fenced node refuses the write, so it is tried only when no other is left), then ejected.
A request pinned to a node (``X-Dtm-Node``) tries that node only, healthy or not, never another.
"""

from __future__ import annotations

from collections.abc import Sequence


def attempt_order(
    healthy: Sequence[bool], turn: int, fenced: Sequence[bool] | None = None
) -> list[int]:
    """Node indexes in the order to try them on the request numbered ``turn``."""
    n = len(healthy)
    if n == 0:
        return []
    start = turn % n
    rotated = [(start + k) % n for k in range(n)]
    if fenced is None:
        return [i for i in rotated if healthy[i]] + [i for i in rotated if not healthy[i]]
    return sorted(rotated, key=lambda i: (not healthy[i], fenced[i]))


def pinned_order(names: Sequence[str], pin: str) -> list[int] | None:
    """The one node index a request pinned to ``pin`` tries; None if no node has that name."""
    for i, name in enumerate(names):
        if name == pin:
            return [i]
    return None
