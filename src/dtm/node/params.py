"""Parse and check what a request carries besides its body: query parameters and dtm headers.

Rule: a parameter is either absent (its default) or a plain decimal integer within its range; any
other text, a repeated parameter or an unknown one is ErrSyntaxInvalidArgs naming it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

import msgspec

from dtm import wire
from dtm.core import sessiontoken
from dtm.core.keys import check_key
from dtm.errors import ErrPayloadTooLarge, ErrSyntaxInvalidArgs
from dtm.site import Request

T = TypeVar("T")

_DIGITS = re.compile(r"[0-9]{1,19}")  # then at most wire.MAX_INT: fits SQLite's integers

MAX_LIMIT = wire.MAX_PAGE_ROWS
DEFAULT_LIMIT = 1_000
MAX_LONGPOLL_MS = 60_000
MAX_SESSION_WAIT_MS = 10_000


@dataclass(frozen=True, slots=True)
class IntRange:
    """An integer parameter: its default and inclusive bounds."""

    default: int
    low: int
    high: int


SINCE = IntRange(0, 0, wire.MAX_INT)
LIMIT = IntRange(DEFAULT_LIMIT, 1, MAX_LIMIT)
LONGPOLL = IntRange(0, 0, MAX_LONGPOLL_MS)
SESSION_WAIT = IntRange(0, 0, MAX_SESSION_WAIT_MS)
HLC = IntRange(0, 0, wire.MAX_INT)  # the range of wire.Stamp
# ?tombstones=1: deleted rows are answered too, so a reader merging several nodes can order a
# delete against another node's live row (dtm.core.readmerge).
TOMBSTONES = IntRange(0, 0, 1)


def parse_int(text: str, name: str, rng: IntRange) -> int:
    """``text`` as an integer in ``rng``, or ErrSyntaxInvalidArgs naming ``name``."""
    if _DIGITS.fullmatch(text) is None:
        raise ErrSyntaxInvalidArgs(f"{name} must be a non-negative integer, not {text[:40]!r}")
    value = int(text)
    if not rng.low <= value <= rng.high:
        raise ErrSyntaxInvalidArgs(f"{name} must be in {rng.low}..{rng.high}, not {value}")
    return value


def query(request: Request, allowed: Mapping[str, IntRange | None]) -> dict[str, str]:
    """The query parameters, checked: only ``allowed`` names, each at most once."""
    out: dict[str, str] = {}
    for name, value in request.query():
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise ErrSyntaxInvalidArgs(f"unknown query parameter {name!r} (known: {known})")
        if name in out:
            raise ErrSyntaxInvalidArgs(f"query parameter {name!r} given more than once")
        out[name] = value
    return out


def int_param(params: Mapping[str, str], name: str, rng: IntRange) -> int:
    """An integer query parameter (already collected by `query`), or its default."""
    text = params.get(name)
    return rng.default if text is None else parse_int(text, name, rng)


def key_param(params: Mapping[str, str], name: str) -> str | None:
    """An optional key-valued query parameter; empty counts as absent."""
    text = params.get(name)
    return check_key(text) if text else None


def path_key(request: Request) -> str:
    """The ``{key}`` of the path, checked against the key rule."""
    return check_key(request.match)


def int_header(request: Request, name: str, rng: IntRange) -> int:
    """An integer header, or its default when absent."""
    values = request.header_all(name)
    if not values:
        return rng.default
    if len(values) > 1:
        raise ErrSyntaxInvalidArgs(f"header {name} given more than once")
    return parse_int(values[0].strip(), f"header {name}", rng)


def session_header(request: Request) -> wire.SessionToken:
    """The caller's session token (empty if none), by the one codec (`dtm.core.sessiontoken`)."""
    values = request.header_all(wire.SESSION_HEADER)
    if len(values) > 1:
        raise ErrSyntaxInvalidArgs(f"header {wire.SESSION_HEADER} given more than once")
    return sessiontoken.decode(values[0] if values else None)


def decode(data: bytes, type_: type[T], what: str) -> T:
    """`wire.decode`, also refusing JSON nested too deeply to parse."""
    try:
        return wire.decode(data, type_, what=what)
    except RecursionError:
        raise ErrSyntaxInvalidArgs(f"{what} is nested too deeply") from None


def canonical(value: msgspec.Raw) -> msgspec.Raw:
    """`wire.canonical_json`, with every failure as ErrSyntaxInvalidArgs."""
    try:
        return wire.canonical_json(value)
    except RecursionError:
        raise ErrSyntaxInvalidArgs("value is nested too deeply") from None
    except (msgspec.DecodeError, ValueError) as exc:
        raise ErrSyntaxInvalidArgs(f"value is not valid JSON: {exc}") from None


def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or ErrPayloadTooLarge if it exceeds ``limit`` bytes (the server has
    already refused one over the node's largest limit before reading it)."""
    if len(request.body) > limit:
        raise ErrPayloadTooLarge(f"body is {len(request.body)} bytes; the limit is {limit}")
    return request.body
