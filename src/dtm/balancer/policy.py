"""When the balancer may try a request again on another data node.

Rule: a failed attempt may be repeated on another node iff the request never reached a node
(its connection could not be opened) or it is idempotent (GET, HEAD, OPTIONS, PUT, DELETE, and
POST to /v1/replicate or /v1/purge); a read or a delete answered 409 ErrNotCaughtUp (the replica
has not caught up with the caller's session), or a write answered 503 ErrClockSkew (the node's
clock fences writes; it refused before applying), moves on to the next node.
"""

from __future__ import annotations

from typing import Final

IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
IDEMPOTENT_POSTS: Final = frozenset({"/v1/replicate", "/v1/purge"})
READ_METHODS: Final = frozenset({"GET", "HEAD"})
# Client writes: a clock-fenced node refuses them, so they go to unfenced nodes first.
WRITE_METHODS: Final = frozenset({"PUT", "DELETE"})
# Requests a node serves only once it has caught up with the caller's session token.
SESSION_METHODS: Final = frozenset({"GET", "HEAD", "DELETE"})
NOT_CAUGHT_UP: Final = b'"ErrNotCaughtUp"'
CLOCK_SKEW: Final = b'"ErrClockSkew"'


def may_retry(method: str, path: str, reached_node: bool) -> bool:
    """May a failed attempt of ``method path`` be repeated on another node?"""
    if not reached_node:
        return True
    if method in IDEMPOTENT_METHODS:
        return True
    return method == "POST" and path in IDEMPOTENT_POSTS


def is_not_caught_up(method: str, status: int, body: bytes) -> bool:
    """Is this answer a replica saying it has not caught up with the caller's session?"""
    return status == 409 and method in SESSION_METHODS and NOT_CAUGHT_UP in body


def is_clock_skew(method: str, status: int, body: bytes) -> bool:
    """Is this answer a clock-fenced node refusing a client write?"""
    return status == 503 and method in WRITE_METHODS and CLOCK_SKEW in body
