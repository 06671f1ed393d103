"""How long the balancer waits for a data node's answer.

Rule: the read timeout is the configured one, plus the wait a long-poll of the change feed
(`GET /v1/changes?...&wait=MS`) asks for; a malformed wait adds nothing (the node rejects it).
"""

from __future__ import annotations

from typing import Final

CHANGES_PATH: Final = b"/v1/changes"
MAX_WAIT_MS: Final = 10 * 60 * 1000


def read_timeout_ms(method: str, target: bytes, base_ms: int) -> int:
    """The read timeout for one request with target ``target`` (path and query)."""
    if method != "GET" or not target.startswith(CHANGES_PATH):
        return base_ms
    path, _, query = target.partition(b"?")
    if path != CHANGES_PATH:
        return base_ms
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        if name == b"wait" and value.isdigit() and len(value) <= 9:
            return base_ms + min(int(value), MAX_WAIT_MS)
    return base_ms
