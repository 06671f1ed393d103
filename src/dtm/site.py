"""The lean HTTP server of a data node and of the request handler: llhttp frames each request
(the balancer's `ClientConn`), a small route table picks the handler, and the answer is written
as one prebuilt byte string, or streamed in chunks.

Rule: a request is admitted by the listener's `serve.Guard`, the checks of every dtm listener
(on a loopback listener Host must be the loopback, 421; a protected path needs the cluster
credential, 401; a body must be application/json, 415), from its head alone, before its body is
read; an unknown
path is 404 and a known path's other method 405 with Allow, both JSON; every `DtmError` a route
raises becomes its JSON answer, anything else is a 500 logged (`httpkit.log_unexpected`); every
answer goes through the component's ``after`` hook (its headers, its metrics). A write runs to
its end even if its client leaves (as aiohttp's server did); a read is cancelled then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import parse_qsl, unquote

from dtm import wire
from dtm.balancer import status
from dtm.balancer.downstream import ClientConn
from dtm.balancer.http1 import RequestHead
from dtm.errors import (
    DtmError,
    ErrInternal,
    ErrNoDataFound,
    ErrRequestTimeout,
    ErrSyntaxInvalidArgs,
    ErrUnavailable,
)
from dtm.httpkit import log_unexpected, quoted
from dtm.serve import OPEN

JSON: Final = b"application/json"
WRITES: Final = frozenset({"PUT", "POST", "DELETE", "PATCH"})
METHODS: Final = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"})
MIN_BUFFERED: Final = 64 * 1024 * 1024
MAX_UNSENT: Final = 256 * 1024  # a streamed answer waits for the client beyond this many bytes
_REASONS: Final = {s.value: s.phrase.encode() for s in HTTPStatus}

log = logging.getLogger("dtm.http")


class Request:
    """One request as a handler sees it: parsed once, its body whole."""

    __slots__ = ("body", "headers", "match", "method", "path", "state", "target")

    def __init__(self, head: RequestHead, body: bytes, path: str, match: str = "") -> None:
        self.method = head.method
        self.target = head.target
        self.path = path  # percent-decoded
        self.match = match  # the path's {key} or {bucket}, percent-decoded
        self.body = body
        self.state: Any = None  # what a route notes for the ``after`` hook (a claim, a session)
        headers: dict[str, list[str]] = {}
        for name, value in head.headers:
            headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        self.headers = headers

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        return self.headers.get(name.lower(), [])

    def query(self) -> list[tuple[str, str]]:
        _, _, raw = self.target.partition(b"?")
        return parse_qsl(raw.decode("latin-1"), keep_blank_values=True) if raw else []


@dataclass(slots=True)
class Answer:
    """What a route answers: a status, a body (or a stream of body pieces after it), its type and
    any more header fields."""

    status: int
    body: bytes = b""
    content_type: bytes = JSON
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False
    stream: AsyncIterator[bytes] | None = None  # sent chunked after ``body``

    def encode(self, keep_alive: bool, head_only: bool, http10: bool = False) -> bytes:
        """The whole answer (of a streamed one: its head and ``body`` as the first chunk); an
        HTTP/1.0 client is told when the connection stays open."""
        parts = [b"HTTP/1.1 %d %s\r\n" % (self.status, _REASONS.get(self.status, b""))]
        if self.stream is not None:
            parts.append(b"Content-Type: " + self.content_type + b"\r\n")
            if not http10:
                parts.append(b"Transfer-Encoding: chunked\r\n")
        elif self.status != 304:
            parts.append(b"Content-Type: " + self.content_type + b"\r\n")
            parts.append(b"Content-Length: %d\r\n" % len(self.body))
        for name, value in self.headers.items():
            parts.append(f"{name}: {value}\r\n".encode("latin-1"))
        if not keep_alive:
            parts.append(b"Connection: close\r\n")
        elif http10:
            parts.append(b"Connection: keep-alive\r\n")
        parts.append(b"\r\n")
        if self.stream is not None:
            parts.append(self.body if http10 else chunk(self.body))
        elif not head_only and self.status != 304:
            parts.append(self.body)
        return b"".join(parts)


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (nothing for no bytes: an empty chunk ends the body)."""
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


def json_answer(msg: object, code: int = 200) -> Answer:
    """A wire struct as a JSON answer."""
    return Answer(code, wire.encode(msg))


def error_answer(err: DtmError, code: int | None = None) -> Answer:
    return Answer(code or err.http_status, wire.encode(wire.error_body(err)))


Handler = Callable[[Request], Awaitable[Answer]]
# Called with every answer before it is sent: its route template and how long it took.
After = Callable[[Request, Answer, str, float], None]


@dataclass(frozen=True)
class Routes:
    """Exact paths, and path prefixes whose rest is one parameter, each with its methods (a
    HEAD is answered only where it is listed, by its GET route without the body)."""

    exact: dict[str, dict[str, Handler]]
    prefixed: tuple[tuple[str, str, dict[str, Handler]], ...]  # (prefix, template, methods)

    def find(self, path: str) -> tuple[str, dict[str, Handler], str] | None:
        """The route template, its methods and the parameter for ``path``; None: no route."""
        methods = self.exact.get(path)
        if methods is not None:
            return path, methods, ""
        for prefix, template, methods in self.prefixed:
            if path.startswith(prefix):
                return template, methods, path[len(prefix) :]
        return None


@dataclass(frozen=True)
class Limits:
    """A lean listener's bounds (see `serve.Limits` for the aiohttp services')."""

    head_timeout_ms: int
    max_connections: int
    max_body_bytes: int
    idle_timeout_ms: int


class Site:
    """A component's lean server as a `downstream.Site`: admits, routes and answers requests."""

    def __init__(
        self,
        name: str,
        routes: Routes,
        limits: Limits,
        after: After,
        before: Callable[[], None] | None = None,
    ) -> None:
        self.name = name  # "node", "handler": in its refusals and its log lines
        self.routes = routes
        self.before = before
        self.after = after
        self.guard = OPEN  # the listener's checks: the edge sets them before it listens
        self.connections = 0
        self.buffered = 0
        self.max_connections = limits.max_connections
        self.max_body_bytes = limits.max_body_bytes
        self.max_buffered_bytes = max(MIN_BUFFERED, 4 * limits.max_body_bytes)
        self.head_timeout_ms = limits.head_timeout_ms
        self.idle_ticks = math.ceil(limits.idle_timeout_ms / max(limits.head_timeout_ms / 4, 10))
        self.totals = status.Counters()
        self.stopping = False
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def conn(self) -> ClientConn:
        """A protocol for one new connection (the server's factory)."""
        return ClientConn(self)

    # ------------------------------------------------------------ downstream.Site

    def admit(self, head: RequestHead) -> bytes | None:
        refused = self.refusal(head)
        return None if refused is None else refused.encode(False, False)

    def refusal(self, head: RequestHead) -> Answer | None:
        """The answer that refuses ``head`` before its body is read, or None."""
        no = self.guard.check(
            None if head.host is None else head.host.decode("latin-1"),
            unquote(head.path),
            [v.decode("latin-1") for n, v in head.headers if n.lower() == b"authorization"],
            head.has_body,
            (head.content_type or b"").split(b";", 1)[0].strip().lower().decode("latin-1"),
        )
        if no is not None:
            answer = error_answer(no.err, no.status)
            answer.headers.update(no.headers)
            return answer
        if self.stopping:
            return error_answer(ErrUnavailable(f"the {self.name} is stopping; try another"))
        return None

    def local(self, head: RequestHead) -> bytes | None:
        return None  # every answer is made by a handler, in order, by `forward`

    async def forward(self, client: ClientConn, head: RequestHead, body: bytes | bytearray) -> bool:
        if head.method in WRITES:  # a write is seen through even if its client leaves
            answer = await asyncio.shield(self._counted(head, bytes(body)))
        else:
            answer = await self._counted(head, bytes(body))
        keep = head.keep_alive and not answer.close and not self.stopping
        transport = client.transport
        if transport is None or transport.is_closing():
            return False
        http10 = head.version == b"HTTP/1.0"
        if answer.stream is not None and http10:
            keep = False  # HTTP/1.0 has no chunks: the body ends where the connection does
        transport.write(answer.encode(keep, head.method == "HEAD", http10))
        if answer.stream is not None:
            done = await self._stream(client, answer.stream, http10)
            return keep and done
        return keep

    async def _stream(self, client: ClientConn, pieces: AsyncIterator[bytes], raw: bool) -> bool:
        """Send the rest of a streamed answer (``raw``: unchunked); False if it broke off (the
        client then sees a body that never ends: the only way left to fail once the head is
        sent)."""
        try:
            async for piece in pieces:
                transport = client.transport
                if transport is None or transport.is_closing():
                    return False
                transport.write(piece if raw else chunk(piece))
                if transport.get_write_buffer_size() > MAX_UNSENT:
                    await client.writable()
        except DtmError as err:
            log.warning("a streamed answer broke off: %s", quoted(err.message))
            return False
        except Exception as exc:
            log_unexpected(f"{self.name} stream", "a streamed answer broke off", exc=exc)
            return False
        transport = client.transport
        if transport is None or transport.is_closing():
            return False
        if not raw:
            transport.write(b"0\r\n\r\n")
        return True

    # ------------------------------------------------------------ answering

    async def _counted(self, head: RequestHead, body: bytes) -> Answer:
        """`_answer`, counted in flight until it ends (a shielded write: even after its client
        left), so that `drain` waits for it."""
        self.in_flight += 1
        self._idle.clear()
        try:
            return await self._answer(head, body)
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self._idle.set()

    async def _answer(self, head: RequestHead, body: bytes) -> Answer:
        start = time.perf_counter()
        if self.before is not None:
            self.before()
        path = unquote(head.path)
        found = self.routes.find(path)
        template = found[0] if found is not None else "unmatched"
        request = Request(head, body, path, found[2] if found is not None else "")
        try:
            answer = await self._route(request, found)
        except DtmError as err:
            answer = error_answer(err)
            answer.close = isinstance(err, ErrRequestTimeout)
        except Exception as exc:
            log_unexpected(
                f"{self.name} {template}",
                "internal error answering %s %s",
                head.method,
                quoted(path),
                exc=exc,
            )
            answer = error_answer(ErrInternal(f"internal error; see the {self.name}'s log"))
        self.after(request, answer, template, time.perf_counter() - start)
        return answer

    async def _route(
        self, request: Request, found: tuple[str, dict[str, Handler], str] | None
    ) -> Answer:
        if found is None:
            raise ErrNoDataFound(f"no such path: {request.method} {request.path}")
        methods = found[1]
        handler = methods.get(request.method)
        if handler is None:
            allowed = ",".join(sorted(methods))
            no = error_answer(
                ErrSyntaxInvalidArgs(
                    f"method {request.method} not allowed here (allowed: {allowed})"
                ),
                405,
            )
            no.headers["Allow"] = allowed
            return no
        return await handler(request)

    # ------------------------------------------------------------ stopping

    async def drain(self, timeout_s: float) -> None:
        """Refuse new requests and wait (at most ``timeout_s``) for those being answered."""
        self.stopping = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout_s)
