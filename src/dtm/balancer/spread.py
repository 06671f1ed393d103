"""Which data nodes a request tries, in which order.

Rule: round-robin over the healthy nodes, starting one node further on each request; ejected
nodes follow as a last resort; every node at most once, so attempts never exceed the node count.
"""

from __future__ import annotations

from collections.abc import Sequence


def attempt_order(healthy: Sequence[bool], turn: int) -> list[int]:
    """Node indexes in the order to try them on the request numbered ``turn``."""
    n = len(healthy)
    if n == 0:
        return []
    start = turn % n
    rotated = [(start + k) % n for k in range(n)]
    return [i for i in rotated if healthy[i]] + [i for i in rotated if not healthy[i]]
