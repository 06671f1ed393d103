"""Hardened aiohttp serving: what every aiohttp listener of dtm (the sync, the viewer) enforces
before a route runs (a data node and the handler enforce the same in `dtm.site`).

Rule: a connection must deliver each request head within ``head_timeout`` of its first byte (of
the accept, for the first request), else it gets ``408`` JSON and is closed; a request body must
make progress every ``body_timeout`` (else the route's read fails with 408); an idle keep-alive
connection is closed after ``idle_timeout``; beyond ``max_connections`` a new connection gets
``503`` JSON and is closed; aiohttp's own parser refusals are the same JSON error body as every
other 4xx. Per request (`Guard`): a loopback listener answers only ``Host`` localhost, 127.0.0.1
or [::1] (421), a protected path needs the cluster credential (401), a body must be
``application/json`` (415).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from dtm import wire
from dtm.auth import AUTH_HEADER, Credential
from dtm.errors import (
    DtmError,
    ErrRequestTimeout,
    ErrSyntaxInvalidArgs,
    ErrUnauthorized,
    ErrUnavailable,
    from_status,
)
from dtm.hosts import host_allowed
from dtm.httpkit import Handler, error_response, log_unexpected, quoted

log = logging.getLogger("dtm.http")

IDLE_TIMEOUT_S: Final = 60.0
MAX_ERROR_TEXT: Final = 200

# What a connection is waiting for, as far as our timers are concerned; _LINGER: refused, its
# answer sent and its write side shut, its bytes read and dropped until LINGER_S has passed.
_NOTHING, _HEAD, _BODY, _NEXT, _LINGER = range(5)
# A refused connection is closed this long after its answer: closing a socket with unread bytes
# sends a reset, which can destroy the answer before the client (still sending) has read it.
LINGER_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds of one listener, in seconds and connections."""

    head_timeout_s: float
    body_timeout_s: float
    max_connections: int
    idle_timeout_s: float = IDLE_TIMEOUT_S


class BodyTimeout(ErrRequestTimeout):
    """A request body stopped arriving; the route's read raises this (answered 408)."""


def _raw_answer(err: DtmError, status: int) -> bytes:
    body = wire.encode(wire.error_body(err))
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def half_closable(transport: asyncio.BaseTransport) -> bool:
    """Can ``transport`` shut its write side and still read? (uvloop's TCP transports can, but
    are not `asyncio.WriteTransport` instances; TLS transports cannot.)"""
    can = getattr(transport, "can_write_eof", None)
    return callable(can) and bool(can()) and callable(getattr(transport, "write_eof", None))


class GuardedHandler(RequestHandler):
    """aiohttp's connection protocol with head, body-progress and connection bounds."""

    __slots__ = ("_body", "_deadline", "_got_bytes", "_limits", "_phase", "_timer")

    def __init__(self, manager: web.Server, limits: Limits, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._limits = limits
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._phase = _HEAD
        self._got_bytes = False
        self._body: StreamReader | None = None

    # ------------------------------------------------------------ timers

    def _arm(self, delay: float) -> None:
        self._deadline = self._loop.time() + delay
        if self._timer is None:
            self._timer = self._loop.call_at(self._deadline, self._expired)

    def _expired(self) -> None:
        self._timer = None
        if self.transport is None or self._phase in (_NOTHING, _NEXT, _LINGER):
            return
        if self._loop.time() < self._deadline:  # pushed on by progress since it was set
            self._timer = self._loop.call_at(self._deadline, self._expired)
            return
        if self._phase == _HEAD:
            if self._request_in_progress or self._messages:
                return
            if self._got_bytes:
                ms = round(self._limits.head_timeout_s * 1000)
                err = ErrRequestTimeout(f"the request head did not arrive within {ms} ms")
                self._refuse(_raw_answer(err, 408))
                return
            self.force_close()
        elif self._phase == _BODY and self._body is not None and not self._body.is_eof():
            ms = round(self._limits.body_timeout_s * 1000)
            self._body.set_exception(BodyTimeout(f"the request body stalled for {ms} ms"))
            self._phase = _NOTHING

    # ------------------------------------------------------------ protocol events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        manager = self._manager
        if manager is not None and len(manager.connections) > self._limits.max_connections:
            err = ErrUnavailable(
                f"over {self._limits.max_connections} connections are open; try again later"
            )
            self._refuse(_raw_answer(err, 503))
            return
        self._arm(self._limits.head_timeout_s)

    def _refuse(self, answer: bytes) -> None:
        """Send ``answer`` and close: the write side at once, the connection after `LINGER_S`
        (reading and dropping what still comes), so that the answer reaches the client."""
        transport = self.transport
        if transport is None:
            return
        transport.write(answer)
        if not half_closable(transport):
            self.force_close()  # TLS: no half-close
            return
        self._phase = _LINGER
        transport.write_eof()
        self._loop.call_later(LINGER_S, self._end_linger)

    def _end_linger(self) -> None:
        self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase == _LINGER:
            return  # refused: dropped
        before = self._request_count
        super().data_received(data)
        if self._request_count != before:  # a head (or a parser refusal) is complete
            payload = self._messages[-1][1] if self._messages else None
            if payload is not None and not payload.is_eof():
                self._phase, self._body = _BODY, payload
                self._arm(self._limits.body_timeout_s)
            else:
                self._phase, self._body = _NOTHING, None
        elif self._phase == _BODY:
            if self._body is None or self._body.is_eof():
                self._phase, self._body = _NOTHING, None
            else:
                self._arm(self._limits.body_timeout_s)
        elif data:
            if self._phase == _NEXT:
                self._phase = _HEAD
                self._arm(self._limits.head_timeout_s)
            self._got_bytes = True

    async def finish_response(
        self, request: BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        answered = await super().finish_response(request, resp, start_time)
        if not self._messages and self._phase == _NOTHING:
            self._phase, self._got_bytes = _NEXT, False
        return answered

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's refusals (bad request line or headers, a bug escaping the routes) as our
        JSON error body; a parser refusal is one log line, an unexpected error a traceback at
        most once in a while."""
        if request.writer.output_size > 0:
            raise ConnectionError("the answer was already being sent; cannot send an error")
        text = message or (str(exc) if exc is not None else "") or HTTPStatus(status).phrase
        text = text.strip().splitlines()[0][:MAX_ERROR_TEXT] if text.strip() else ""
        if status >= 500:
            log_unexpected("aiohttp", "error answering a request: %s", quoted(text), exc=exc)
        else:
            log.info("refused a malformed request from %s: %s", request.remote, quoted(text))
        err = from_status(status, f"malformed request: {text}" if status == 400 else text)
        resp = error_response(err, status)
        resp.force_close()
        return resp


class GuardedServer(web.Server):
    """aiohttp's low-level server, making `GuardedHandler` protocols."""

    def __init__(
        self, inner: web.Server, limits: Limits, loop: asyncio.AbstractEventLoop, **kw: Any
    ) -> None:
        super().__init__(
            inner.request_handler,
            request_factory=inner.request_factory,
            handler_cancellation=inner.handler_cancellation,
            loop=loop,
            **kw,
        )
        self.limits = limits
        self._protocol_loop = loop
        self._protocol_kwargs = kw

    def __call__(self) -> RequestHandler:
        return GuardedHandler(self, self.limits, loop=self._protocol_loop, **self._protocol_kwargs)


class GuardedRunner(web.AppRunner):
    """An AppRunner whose connections are `GuardedHandler`s (and no access log)."""

    def __init__(self, app: web.Application, limits: Limits, shutdown_timeout: float) -> None:
        super().__init__(app, access_log=None, shutdown_timeout=shutdown_timeout)
        self.limits = limits

    async def _make_server(self) -> web.Server:
        inner = await super()._make_server()
        loop = asyncio.get_running_loop()
        return GuardedServer(
            inner, self.limits, loop, access_log=None, keepalive_timeout=self.limits.idle_timeout_s
        )


# ---------------------------------------------------------------- per request


OPEN_PATHS = frozenset({"/healthz", "/openapi.json"})


def everything_but_open_paths(path: str) -> bool:
    """The default: every path needs the credential except the probe and the API document."""
    return path not in OPEN_PATHS


def _one_accepted(credential: Credential, auths: list[str]) -> bool:
    """Exactly one Authorization value, and it names one of the cluster's secrets."""
    return len(auths) == 1 and credential.accepts(auths[0])


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a listener refuses a request: the error, its status, any header fields to add."""

    err: DtmError
    status: int
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Guard:
    """The per-request checks of one listener (aiohttp's and the lean servers' alike)."""

    credential: Credential | None
    loopback: bool
    needs_credential: Callable[[str], bool] = everything_but_open_paths

    def check(
        self, host: str | None, path: str, auths: list[str], has_body: bool, mime: str
    ) -> Refused | None:
        """None if a request may go on, from its Host, decoded path, Authorization values,
        whether it has a body, and its media type (lower case, no parameters)."""
        if self.loopback and not host_allowed(host):
            return Refused(
                ErrSyntaxInvalidArgs(
                    f"Host {quoted((host or '')[:100])} is not this server: a loopback listener "
                    "answers only localhost, 127.0.0.1 and [::1]"
                ),
                421,
                {},
            )
        cred = self.credential
        if cred is not None and self.needs_credential(path) and not _one_accepted(cred, auths):
            return Refused(
                ErrUnauthorized(
                    "this endpoint needs the cluster credential: Authorization: Bearer <secret>"
                ),
                401,
                {"WWW-Authenticate": 'Bearer realm="dtm"'},
            )
        if has_body and mime != "application/json":
            return Refused(
                ErrSyntaxInvalidArgs(
                    f"a request body must be Content-Type: application/json, "
                    f"not {quoted(mime[:100])}"
                ),
                415,
                {},
            )
        return None

    def refusal(self, request: web.Request) -> web.Response | None:
        """The answer that refuses ``request``, or None if it may go on."""
        no = self.check(
            request.headers.get("Host"),
            request.path,
            request.headers.getall(AUTH_HEADER, []),
            request.body_exists,
            request.content_type,
        )
        if no is None:
            return None
        resp = error_response(no.err, no.status)
        resp.headers.update(no.headers)
        return resp

    def middleware(self) -> Middleware:
        """The outermost middleware of a guarded application."""

        @web.middleware
        async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
            refused = self.refusal(request)
            if refused is not None:
                return refused
            return await handler(request)

        return guard


OPEN: Final = Guard(None, False, lambda path: False)  # a listener that checks nothing


def guard_app(app: web.Application, guard: Guard) -> None:
    """Put ``guard`` in front of every route of ``app`` (before it is started)."""
    app.middlewares.insert(0, guard.middleware())
