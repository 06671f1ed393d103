"""How long the balancer waits for a data node's answer.

Rule: the read timeout is the configured one plus the wait the client asked the node for in
``X-Dtm-Wait`` (already capped at the node's own maximum of 10 s when parsed), so a node that
waits as asked is never taken for a slow one and ejected.
"""

from __future__ import annotations


def read_timeout_ms(wait_ms: int, base_ms: int) -> int:
    """The read timeout for a request whose ``X-Dtm-Wait`` is ``wait_ms`` (0 if none)."""
    return base_ms + max(wait_ms, 0)
