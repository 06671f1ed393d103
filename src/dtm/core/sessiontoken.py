"""The one codec of the ``X-Dtm-Session`` header, for every reader of it.

Rule: a session header is the compact JSON of a `wire.SessionToken` of at most MAX_HEADER bytes
whose every epoch names a version; absent or blank is the empty token; a request's header is
decoded strictly (anything else is ErrSyntaxInvalidArgs naming the header), an answer's
leniently (a malformed one counts as absent: the reader keeps the token it has).
"""

from __future__ import annotations

from dtm import wire
from dtm.errors import ErrSyntaxInvalidArgs

MAX_HEADER = 16 * 1024
EMPTY = wire.SessionToken()
WHAT = f"header {wire.SESSION_HEADER}"


def encode(token: wire.SessionToken) -> str:
    """The header value of ``token``."""
    return wire.encode(token).decode()


def decode(header: str | bytes | None) -> wire.SessionToken:
    """A request's token; ErrSyntaxInvalidArgs if it is not a well-formed token."""
    data = header.encode("utf-8", "replace") if isinstance(header, str) else header
    if data is None or not data.strip():
        return EMPTY
    if len(data) > MAX_HEADER:
        raise ErrSyntaxInvalidArgs(f"{WHAT} is over {MAX_HEADER} B")
    try:
        token = wire.decode(data, wire.SessionToken, limit=MAX_HEADER, what=WHAT)
    except RecursionError:
        raise ErrSyntaxInvalidArgs(f"{WHAT} is nested too deeply") from None
    if set(token.epochs) - set(token.versions):
        raise ErrSyntaxInvalidArgs(f"{WHAT}: an epoch names no version")
    return token


def from_answer(header: str | bytes | None) -> wire.SessionToken | None:
    """An answer's token, or None if it has none or a malformed one."""
    try:
        token = decode(header)
    except ErrSyntaxInvalidArgs:
        return None
    return token if token.versions or token.hlc else None
