"""One request's session token, as the handler carries it to the data tier and back.

Rule: the token starts as the client's ``X-Dtm-Session`` header (absent = empty); every successful
data-node answer's contribution is merged in with `dtm.core.session.merge_tokens`; the merged token
is what the handler answers with. A client's ``hlc`` that this process's clock does not admit
(`dtm.core.hlc.admits`: more than the max offset ahead) is dropped, never forwarded: no stamp
the data tier produced can be that far ahead, and a legitimate session keeps working.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import msgspec

from dtm import wire
from dtm.core import sessiontoken
from dtm.core.hlc import DEFAULT_MAX_OFFSET_MS, admits
from dtm.core.session import merge_tokens

log = logging.getLogger(__name__)

EMPTY = sessiontoken.EMPTY


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_token(
    header: str | None,
    now_ms: Callable[[], int] = wall_ms,
    max_offset_ms: int = DEFAULT_MAX_OFFSET_MS,
) -> wire.SessionToken:
    """The client's token from its header value (`dtm.core.sessiontoken`); ErrSyntaxInvalidArgs
    if malformed. An ``hlc`` too far ahead of ``now_ms()`` is dropped (the token goes on
    without it)."""
    token = sessiontoken.decode(header)
    if token.hlc and not admits(token.hlc, now_ms(), max_offset_ms):
        log.warning("dropping a session hlc %d ahead of this clock's bound", token.hlc)
        token = msgspec.structs.replace(token, hlc=0)
    return token


class Session:
    """The token of one request, growing with every answer from the data tier."""

    __slots__ = ("token",)

    def __init__(self, token: wire.SessionToken = EMPTY) -> None:
        self.token = token

    @property
    def header(self) -> str:
        """The token as a header value."""
        return sessiontoken.encode(self.token)

    @property
    def hlc(self) -> int:
        """The highest stamp this session has seen: what a write sends as ``X-Dtm-Hlc``."""
        return self.token.hlc

    def absorb(self, header: str | None) -> None:
        """Merge a data node's contribution (its ``X-Dtm-Session`` answer header)."""
        contribution = contribution_of(header)
        if contribution is not None:
            self.token = merge_tokens(self.token, contribution)

    def merge(self, contribution: wire.SessionToken) -> None:
        """Merge a data node's contribution (already decoded)."""
        self.token = merge_tokens(self.token, contribution)

    def see_hlc(self, stamp: int) -> None:
        """Make later writes order after ``stamp`` (a row this session read)."""
        if stamp > self.token.hlc:
            self.token = msgspec.structs.replace(self.token, hlc=stamp)


def contribution_of(header: str | None) -> wire.SessionToken | None:
    """A data node's contribution from its ``X-Dtm-Session`` answer header (None if absent or
    malformed, which is logged)."""
    token = sessiontoken.from_answer(header)
    if token is None and header:
        log.warning("ignoring a malformed session header from upstream: %r", header[:200])
    return token
