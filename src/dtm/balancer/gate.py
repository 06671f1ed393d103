"""Which client requests the balancer lets through.

Rule: on a loopback listener Host must name the loopback (localhost, 127.0.0.1 or [::1], any
port) else 400; `GET|HEAD /healthz` needs nothing more; every other request needs the cluster
credential (401); only the balancer's own paths and the data nodes' client paths (`/v1/kv`,
`/v1/kv/{key}`) are served, every internal node path (replicate, purge, digest, changes, ...)
is 404; a request with a body must be `application/json` (415).
"""

from __future__ import annotations

import re
from typing import Final

from dtm.auth import Credential
from dtm.balancer.http1 import RequestHead
from dtm.errors import DtmError, ErrNoDataFound, ErrSyntaxInvalidArgs, ErrUnauthorized
from dtm.hosts import host_allowed

OPEN_PATHS: Final = frozenset({"/healthz"})
LOCAL_PATHS: Final = frozenset({"/healthz", "/v1/status", "/metrics"})
_FORWARDED: Final = re.compile(r"/v1/kv(/[A-Za-z0-9._:-]{1,128})?")
_JSON: Final = b"application/json"


class Refusal:
    """A request the gate refuses: the error, its HTTP status, and any extra header lines."""

    __slots__ = ("err", "extra", "status")

    def __init__(self, err: DtmError, status: int | None = None, extra: bytes = b"") -> None:
        self.err = err
        self.status = status or err.http_status
        self.extra = extra


def forwarded_path(path: str) -> bool:
    """Is ``path`` one the data nodes serve to clients?"""
    m = _FORWARDED.fullmatch(path)
    return m is not None and m.group(1) not in ("/.", "/..")


def refusal(head: RequestHead, credential: Credential | None, loopback: bool) -> Refusal | None:
    """None if ``head`` may be served, else why not."""
    if loopback and (head.host is None or not host_allowed(head.host.decode("latin-1"))):
        return Refusal(ErrSyntaxInvalidArgs("this listener answers only Host: localhost"))
    path = head.path
    if path in OPEN_PATHS and head.method in ("GET", "HEAD"):
        return None
    if credential is not None and not credential.accepts(head.authorization):
        return Refusal(
            ErrUnauthorized("this needs the cluster credential (Authorization: Bearer ...)"),
            extra=b"WWW-Authenticate: Bearer\r\n",
        )
    if path in LOCAL_PATHS:
        return None
    if not forwarded_path(path):
        return Refusal(ErrNoDataFound(f"no such path through the balancer: {path[:120]!r}"))
    if head.has_body and (
        head.content_type is None or head.content_type.split(b";", 1)[0].strip().lower() != _JSON
    ):
        return Refusal(ErrSyntaxInvalidArgs("a request body must be application/json"), 415)
    return None
