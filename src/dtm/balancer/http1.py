"""HTTP/1.x message heads and body framing for the balancer's byte-forwarding proxy.

Rule: the proxy reads only what framing needs (the start line, Content-Length,
Transfer-Encoding, Connection, Expect) and passes every other header line and every body byte
through unchanged; hop-by-hop headers stop at the balancer.

Pure: no I/O. Malformed input raises `ErrSyntaxInvalidArgs` (a client's request) or
`UpstreamProtocolError` (a data node's answer).
"""

from __future__ import annotations

from typing import Final

from dtm.errors import ErrPayloadTooLarge, ErrSyntaxInvalidArgs

MAX_HEAD_BYTES: Final = 64 * 1024
MAX_HEADERS: Final = 100

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
    }
)
_REQUEST_DROPPED: Final = HOP_BY_HOP | {b"content-length", b"expect"}
_TOKEN_CHARS: Final = frozenset(
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


class UpstreamProtocolError(Exception):
    """A data node answered something that is not well-formed HTTP/1.1."""


class RequestHead:
    """A client's request head: what the proxy needs, and the header lines it forwards."""

    __slots__ = (
        "chunked",
        "content_length",
        "expect_continue",
        "keep_alive",
        "lines",
        "method",
        "path",
        "target",
        "version",
    )

    def __init__(
        self,
        method: str,
        target: bytes,
        version: bytes,
        lines: list[bytes],
        content_length: int,
        chunked: bool,
        keep_alive: bool,
        expect_continue: bool,
    ) -> None:
        self.method = method
        self.target = target
        self.path = target.split(b"?", 1)[0].decode("latin-1")
        self.version = version
        self.lines = lines
        self.content_length = content_length
        self.chunked = chunked
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue

    def upstream_bytes(self, body: bytes, deadline_ms: int | None = None) -> bytes:
        """The request as sent to a data node: same start line and end-to-end headers, the body
        framed with Content-Length; with ``deadline_ms``, our X-Dtm-Deadline replaces any the
        client sent."""
        parts = [self.method.encode(), b" ", self.target, b" ", self.version, b"\r\n"]
        for line in self.lines:
            if deadline_ms is not None and line[:15].lower() == b"x-dtm-deadline:":
                continue
            parts += (line, b"\r\n")
        if deadline_ms is not None:
            parts += (b"X-Dtm-Deadline: ", str(deadline_ms).encode(), b"\r\n")
        if body or self.method in ("POST", "PUT", "PATCH"):
            parts += (b"Content-Length: ", str(len(body)).encode(), b"\r\n")
        if self.version == b"HTTP/1.0":
            parts.append(b"Connection: keep-alive\r\n")
        parts += (b"\r\n", body)
        return b"".join(parts)


class ResponseHead:
    """A data node's answer head and how its body is framed."""

    __slots__ = ("chunked", "content_length", "declared", "keep_alive", "lines", "reason", "status")

    def __init__(
        self,
        status: int,
        reason: bytes,
        lines: list[bytes],
        content_length: int,
        chunked: bool,
        keep_alive: bool,
        declared: bytes | None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.lines = lines
        # Body bytes to read; -1: delimited by the end of the connection.
        self.content_length = content_length
        self.chunked = chunked
        self.keep_alive = keep_alive
        # The Content-Length value to pass on (also on HEAD, 204 and 304 answers).
        self.declared = declared

    def client_bytes(self, extra: bytes, keep_alive: bool, body_len: int | None = None) -> bytes:
        """The head as sent on to the client: end-to-end headers plus ``extra`` lines; with
        ``body_len``, for a body the balancer has read whole (and de-chunked)."""
        parts = [b"HTTP/1.1 ", str(self.status).encode(), b" ", self.reason, b"\r\n"]
        for line in self.lines:
            parts += (line, b"\r\n")
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


def _split_headers(
    lines: list[bytes], dropped: frozenset[bytes], bad: type[Exception]
) -> tuple[list[bytes], dict[bytes, list[bytes]]]:
    """Keep the end-to-end header lines; collect the values of the ``dropped`` ones."""
    if len(lines) > MAX_HEADERS:
        raise bad(f"more than {MAX_HEADERS} header lines")
    kept: list[bytes] = []
    special: dict[bytes, list[bytes]] = {}
    for line in lines:
        i = line.find(b":")
        if i <= 0 or line[0] in b" \t" or line[i - 1] in b" \t":
            raise bad(f"malformed header line {line[:80]!r}")
        name = line[:i].lower()
        if not _TOKEN_CHARS.issuperset(name):
            raise bad(f"malformed header name {name[:80]!r}")
        if name in dropped:
            special.setdefault(name, []).append(line[i + 1 :].strip())
        else:
            kept.append(line)
    for value in special.get(b"connection", ()):
        extra = {t.strip().lower() for t in value.split(b",")} - {b"close", b"keep-alive", b""}
        if extra:
            kept = [ln for ln in kept if ln[: ln.find(b":")].lower() not in extra]
    return kept, special


def _content_length(values: list[bytes], bad: type[Exception]) -> int:
    if len(set(values)) != 1 or not values[0].isdigit() or len(values[0]) > 18:
        raise bad(f"bad Content-Length {b', '.join(values)[:80]!r}")
    return int(values[0])


def _chunked(values: list[bytes], bad: type[Exception]) -> bool:
    codings = [c.strip().lower() for v in values for c in v.split(b",") if c.strip()]
    if codings != [b"chunked"]:
        raise bad(f"unsupported Transfer-Encoding {b', '.join(values)[:80]!r}")
    return True


def _keep_alive(version: bytes, special: dict[bytes, list[bytes]]) -> bool:
    tokens = {t.strip().lower() for v in special.get(b"connection", ()) for t in v.split(b",")}
    if version == b"HTTP/1.1":
        return b"close" not in tokens
    return b"keep-alive" in tokens


def parse_request_head(head: bytes) -> RequestHead:
    """Parse a request head (without the blank line that ends it)."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise ErrSyntaxInvalidArgs(f"malformed request line {lines[0][:80]!r}")
    method_b, target, version = parts
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise ErrSyntaxInvalidArgs(f"unsupported HTTP version {version[:20]!r}")
    if not method_b or not _TOKEN_CHARS.issuperset(method_b) or method_b == b"CONNECT":
        raise ErrSyntaxInvalidArgs(f"unsupported method {method_b[:20]!r}")
    if not target.startswith(b"/") or any(c < 0x21 or c == 0x7F for c in target):
        raise ErrSyntaxInvalidArgs(f"malformed request target {target[:80]!r}")
    kept, special = _split_headers(lines[1:], _REQUEST_DROPPED, ErrSyntaxInvalidArgs)
    chunked = False
    length = 0
    if b"transfer-encoding" in special:
        if b"content-length" in special:
            raise ErrSyntaxInvalidArgs("both Content-Length and Transfer-Encoding")
        chunked = _chunked(special[b"transfer-encoding"], ErrSyntaxInvalidArgs)
    elif b"content-length" in special:
        length = _content_length(special[b"content-length"], ErrSyntaxInvalidArgs)
    expect = [v.lower() for v in special.get(b"expect", ())]
    return RequestHead(
        method_b.decode("ascii"),
        target,
        version,
        kept,
        length,
        chunked,
        _keep_alive(version, special),
        b"100-continue" in expect,
    )


def parse_response_head(head: bytes, method: str) -> ResponseHead:
    """Parse a data node's answer head; ``method`` is the request's (HEAD answers have no body)."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0") or not parts[1].isdigit():
        raise UpstreamProtocolError(f"malformed status line {lines[0][:80]!r}")
    status = int(parts[1])
    if not 100 <= status <= 999:
        raise UpstreamProtocolError(f"bad status {status}")
    kept, special = _split_headers(
        lines[1:], HOP_BY_HOP | {b"content-length"}, UpstreamProtocolError
    )
    keep_alive = _keep_alive(parts[0], special)
    chunked = False
    length = -1
    declared: bytes | None = None
    if b"content-length" in special:
        length = _content_length(special[b"content-length"], UpstreamProtocolError)
        declared = special[b"content-length"][0]
    if method == "HEAD" or status in (204, 304) or status < 200:
        length = 0
    elif b"transfer-encoding" in special:
        chunked = _chunked(special[b"transfer-encoding"], UpstreamProtocolError)
        length = 0
        declared = None
    elif declared is None:
        keep_alive = False
    reason = parts[2] if len(parts) == 3 else b""
    return ResponseHead(status, reason, kept, length, chunked, keep_alive, declared)


class ChunkedScanner:
    """Follows chunked framing across any split of the byte stream; optionally keeps the payload.

    `feed` returns how many of the given bytes belong to the message (all of them until the
    end); ``done`` turns true after the last chunk's trailer section.
    """

    __slots__ = ("_bad", "_keep", "_limit", "_line", "_need", "_state", "done", "payload")

    _SIZE, _DATA, _DATA_END, _TRAILER = 0, 1, 2, 3

    def __init__(
        self,
        keep_payload: bool = False,
        limit: int = 1 << 62,
        bad: type[Exception] = UpstreamProtocolError,
    ) -> None:
        self._state = self._SIZE
        self._need = 0
        self._line = bytearray()
        self._keep = keep_payload
        self._limit = limit
        self._bad = bad
        self.payload = bytearray()
        self.done = False

    def feed(self, data: bytes | bytearray | memoryview) -> int:
        i = 0
        n = len(data)
        while i < n and not self.done:
            if self._state == self._DATA:
                take = min(self._need, n - i)
                if self._keep:
                    self.payload += data[i : i + take]
                i += take
                self._need -= take
                if self._need == 0:
                    self._state = self._DATA_END
                continue
            j = bytes(data[i : i + 4096]).find(b"\n")
            if j < 0:
                self._line += data[i:n]
                i = n
                if len(self._line) > 4096:
                    raise self._bad("chunk framing line too long")
                break
            self._line += data[i : i + j + 1]
            i += j + 1
            line = bytes(self._line).rstrip(b"\r\n")
            self._line.clear()
            self._line_done(line)
        return i

    def _line_done(self, line: bytes) -> None:
        if self._state == self._DATA_END:
            if line:
                raise self._bad("chunk data not followed by CRLF")
            self._state = self._SIZE
        elif self._state == self._SIZE:
            size = line.split(b";", 1)[0].strip()
            try:
                self._need = int(size, 16)
            except ValueError:
                raise self._bad(f"bad chunk size {size[:20]!r}") from None
            if self._need < 0 or len(size) > 15:
                raise self._bad(f"bad chunk size {size[:20]!r}")
            if len(self.payload) + self._need > self._limit:
                raise ErrPayloadTooLarge(f"chunked body is over the limit of {self._limit} bytes")
            self._state = self._DATA if self._need else self._TRAILER
        elif not line:  # the blank line that ends the trailer section
            self.done = True
