"""HTTP/1.x message heads for the balancer's byte-forwarding proxy (and the lean servers of
`dtm.site`), built from what llhttp parsed.

Rule: llhttp (httptools, strict: no lenient flag is ever set) frames every message; a head is
accepted only if it is also exactly what RFC 9112 allows where llhttp is lenient (HTTP/1.0 or
1.1 only, one Host (at most one in HTTP/1.0, which predates it), origin-form target,
Transfer-Encoding exactly ``chunked``, no Upgrade), and it is forwarded rebuilt from the parsed
name/value pairs, never as the raw lines; hop-by-hop headers stop at the balancer, and bodies go
on framed by Content-Length (requests) or re-chunked.

Pure: no I/O. A malformed request raises `ErrSyntaxInvalidArgs`, a malformed answer
`UpstreamProtocolError`; `parse_error` maps httptools' own errors to them in one place.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Final

import httptools

from dtm.errors import DtmError, ErrSyntaxInvalidArgs

MAX_HEAD_BYTES: Final = 64 * 1024
MAX_HEADERS: Final = 100
MAX_WAIT_HEADER_MS: Final = 10_000  # the most a data node waits for a session to catch up

Pairs = list[tuple[bytes, bytes]]

# Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus the framing
# and Expect headers the balancer re-creates itself on each hop.
HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
        b"expect",
    }
)
_VERSIONS: Final = {"1.1": b"HTTP/1.1", "1.0": b"HTTP/1.0"}


class UpstreamProtocolError(Exception):
    """A data node answered something that is not well-formed HTTP/1.1."""


def parse_error(exc: Exception, client_side: bool) -> Exception:
    """httptools' refusal as our error: a client's is `ErrSyntaxInvalidArgs`, a node's
    `UpstreamProtocolError`; an error raised by our own checks inside a callback wins."""
    cause = exc.__context__
    if client_side:
        if isinstance(cause, DtmError):
            return cause
        return ErrSyntaxInvalidArgs(f"malformed HTTP request: {exc}")
    if isinstance(cause, UpstreamProtocolError):
        return cause
    return UpstreamProtocolError(f"malformed HTTP answer: {exc}")


PARSER_ERRORS: Final = (httptools.HttpParserError, httptools.HttpParserUpgrade)


class RequestHead:
    """A client's request head: what the proxy needs, and the end-to-end headers it forwards."""

    __slots__ = (
        "authorization",
        "chunked",
        "content_length",
        "content_type",
        "deadline_ms",
        "expect_continue",
        "headers",
        "host",
        "keep_alive",
        "method",
        "node",
        "path",
        "target",
        "version",
        "wait_ms",
    )

    def __init__(
        self,
        method: str,
        target: bytes,
        version: bytes,
        headers: Pairs,
        keep_alive: bool,
    ) -> None:
        self.method = method
        self.target = target
        self.path = target.split(b"?", 1)[0].decode("latin-1")
        self.version = version
        self.headers = headers
        self.keep_alive = keep_alive
        self.content_length = 0
        self.chunked = False
        self.expect_continue = False
        self.host: bytes | None = None
        self.authorization: str | None = None
        self.content_type: bytes | None = None
        self.wait_ms = 0
        self.node: str | None = None  # X-Dtm-Node: the one data node to send it to
        self.deadline_ms = 0  # X-Dtm-Deadline: when the caller stops waiting (0: not given)

    @property
    def has_body(self) -> bool:
        return self.chunked or self.content_length > 0

    def upstream_bytes(
        self, body: bytes | bytearray, deadline_ms: int | None = None, hlc_floor: int = 0
    ) -> bytes:
        """The request as sent to a data node: same start line and end-to-end headers, the body
        framed with Content-Length; with ``deadline_ms``, our X-Dtm-Deadline replaces any the
        client sent; with ``hlc_floor``, X-Dtm-Hlc is raised to at least it (a retried write,
        see `dtm.core.deadline`)."""
        parts: list[bytes | bytearray] = [
            self.method.encode(),
            b" ",
            self.target,
            b" ",
            self.version,
            b"\r\n",
        ]
        for name, value in self.headers:
            lower = name.lower()
            if deadline_ms is not None and lower == b"x-dtm-deadline":
                continue
            if hlc_floor and lower == b"x-dtm-hlc":
                hlc_floor = max(hlc_floor, _stamp(value))
                continue
            parts += (name, b": ", value, b"\r\n")
        if deadline_ms is not None:
            parts += (b"X-Dtm-Deadline: ", str(deadline_ms).encode(), b"\r\n")
        if hlc_floor:
            parts += (b"X-Dtm-Hlc: ", str(hlc_floor).encode(), b"\r\n")
        if body or self.method in ("POST", "PUT", "PATCH"):
            parts += (b"Content-Length: ", str(len(body)).encode(), b"\r\n")
        if self.version == b"HTTP/1.0":
            parts.append(b"Connection: keep-alive\r\n")
        parts += (b"\r\n", body)
        return b"".join(parts)


def _stamp(value: bytes) -> int:
    """A client's X-Dtm-Hlc value as a number (0 if it is not one: the node refuses it then)."""
    text = value.strip()
    return int(text) if text.isdigit() and len(text) <= 19 else 0


class ResponseHead:
    """A data node's answer head and how its body is framed."""

    __slots__ = ("chunked", "content_length", "declared", "headers", "keep_alive", "status")

    def __init__(
        self,
        status: int,
        headers: Pairs,
        content_length: int,
        chunked: bool,
        keep_alive: bool,
        declared: bytes | None,
    ) -> None:
        self.status = status
        self.headers = headers
        # Body bytes to read; -1: delimited by the end of the connection.
        self.content_length = content_length
        self.chunked = chunked
        self.keep_alive = keep_alive
        # The Content-Length value to pass on (also on HEAD, 204 and 304 answers).
        self.declared = declared

    def client_bytes(self, extra: bytes, keep_alive: bool, body_len: int | None = None) -> bytes:
        """The head as sent on to the client: end-to-end headers plus ``extra`` lines; with
        ``body_len``, for a body the balancer has read whole (and de-chunked)."""
        parts = [b"HTTP/1.1 ", str(self.status).encode(), b" ", _reason(self.status), b"\r\n"]
        for name, value in self.headers:
            parts += (name, b": ", value, b"\r\n")
        if body_len is not None:
            parts += (b"Content-Length: ", str(body_len).encode(), b"\r\n")
        elif self.chunked:
            parts.append(b"Transfer-Encoding: chunked\r\n")
        elif self.declared is not None:
            parts += (b"Content-Length: ", self.declared, b"\r\n")
        parts.append(extra)
        if not keep_alive:
            parts.append(b"Connection: close\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


def _split(pairs: Pairs) -> tuple[Pairs, dict[bytes, list[bytes]]]:
    """The end-to-end pairs, and the values of the hop-by-hop ones by lower-case name."""
    kept: Pairs = []
    special: dict[bytes, list[bytes]] = {}
    for name, value in pairs:
        low = name.lower()
        if low in HOP_BY_HOP:
            special.setdefault(low, []).append(value)
        else:
            kept.append((name, value))
    listed = {t.strip().lower() for v in special.get(b"connection", ()) for t in v.split(b",")} - {
        b"close",
        b"keep-alive",
        b"",
    }
    if listed:  # headers the sender named as hop-by-hop in Connection
        kept = [(n, v) for n, v in kept if n.lower() not in listed]
    return kept, special


def _chunked(values: list[bytes] | None) -> bool:
    """Transfer-Encoding must be absent or exactly ``chunked`` (llhttp takes ``gzip, chunked``)."""
    if values is None:
        return False
    return len(values) == 1 and values[0].strip().lower() == b"chunked"


def request_head(
    method: bytes, url: bytes, version: str, pairs: Pairs, keep_alive: bool
) -> RequestHead:
    """Check what llhttp parsed of a request head against RFC 9112 and build the head."""
    bad = ErrSyntaxInvalidArgs
    vers = _VERSIONS.get(version)
    if vers is None:
        raise bad(f"unsupported HTTP version {version[:10]!r}")
    if method == b"CONNECT":
        raise bad("CONNECT is not supported")
    if not url.startswith(b"/"):
        raise bad(f"the request target must be a path: {url[:80]!r}")
    if len(pairs) > MAX_HEADERS:
        raise bad(f"more than {MAX_HEADERS} header fields")
    kept, special = _split(pairs)
    if b"upgrade" in special:
        raise bad("Upgrade is not supported")
    head = RequestHead(method.decode("ascii"), url, vers, kept, keep_alive)
    te = special.get(b"transfer-encoding")
    cl = special.get(b"content-length")
    if te is not None:
        if cl is not None:  # llhttp refuses this too; say so ourselves either way
            raise bad("both Content-Length and Transfer-Encoding")
        if not _chunked(te):
            raise bad(f"unsupported Transfer-Encoding {b', '.join(te)[:80]!r}")
        head.chunked = True
    elif cl is not None:
        if len(cl) != 1 or not cl[0].isdigit() or len(cl[0]) > 18:
            raise bad(f"bad Content-Length {b', '.join(cl)[:80]!r}")
        head.content_length = int(cl[0])
    head.expect_continue = any(
        v.strip().lower() == b"100-continue" for v in special.get(b"expect", ())
    )
    hosts = 0
    for name, value in kept:
        low = name.lower()
        if low == b"host":
            hosts += 1
            head.host = value
        elif low == b"authorization":
            head.authorization = value.decode("latin-1")
        elif low == b"content-type":
            head.content_type = value
        elif low == b"x-dtm-wait" and value.isdigit() and len(value) <= 9:
            head.wait_ms = min(int(value), MAX_WAIT_HEADER_MS)
        elif low == b"x-dtm-deadline":  # only ever shortens the balancer's own deadlines
            if not value.isdigit() or len(value) > 15 or head.deadline_ms:
                raise bad("X-Dtm-Deadline must be one unix time in milliseconds")
            head.deadline_ms = int(value)
        elif low == b"x-dtm-node":
            if head.node is not None:
                raise bad("X-Dtm-Node given more than once")
            head.node = value.decode("latin-1")
    if hosts > 1 or (hosts == 0 and vers != b"HTTP/1.0"):  # (HTTP/1.0 predates Host)
        raise bad("a request needs exactly one Host header" if hosts else "no Host header")
    return head


def response_head(status: int, pairs: Pairs, keep_alive: bool, method: str) -> ResponseHead:
    """Check what llhttp parsed of an answer head and build it; ``method`` is the request's
    (a HEAD answer has no body)."""
    bad = UpstreamProtocolError
    if not 100 <= status <= 599:
        raise bad(f"bad status {status}")
    if len(pairs) > MAX_HEADERS:
        raise bad(f"more than {MAX_HEADERS} header fields")
    kept, special = _split(pairs)
    cl = special.get(b"content-length")
    te = special.get(b"transfer-encoding")
    declared: bytes | None = None
    length = -1
    if cl is not None:
        if len(cl) != 1 or not cl[0].isdigit() or len(cl[0]) > 18:
            raise bad(f"bad Content-Length {b', '.join(cl)[:80]!r}")
        declared = cl[0]
        length = int(declared)
    chunked = False
    if method == "HEAD" or status in (204, 304) or status < 200:
        length = 0
    elif te is not None:
        if not _chunked(te):
            raise bad(f"unsupported Transfer-Encoding {b', '.join(te)[:80]!r}")
        chunked = True
        length = 0
        declared = None
    elif declared is None:
        keep_alive = False
    return ResponseHead(status, kept, length, chunked, keep_alive, declared)
