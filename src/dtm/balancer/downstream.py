"""One client connection to a lean server (the balancer, a data node): parse with llhttp, serve
requests in order, keep alive.

Bytes are parsed as they arrive; complete requests wait in a queue and are served one after
another (so pipelined answers keep their order). A request's body is read whole (up to
``max_body_bytes``, and within the site's global ``max_buffered_bytes``) before it is
served (the balancer forwards it, so a request that may be retried can be sent again byte for
byte); answers are streamed. A request the parser or the gate refuses is answered after the
ones before it, then the connection is closed: the stream can no longer be trusted.

Timers: one tick per connection every ``head_timeout_ms / 4``. A head not complete within the
head timeout (the first one counted from the connection's start), or a body that received no
byte for the head timeout, is answered 408; a connection with nothing to do for the idle
timeout is closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Final, Protocol, cast

import httptools

from dtm.balancer import status
from dtm.balancer.http1 import (
    MAX_HEAD_BYTES,
    PARSER_ERRORS,
    Pairs,
    RequestHead,
    parse_error,
    request_head,
)
from dtm.balancer.upstream import UpstreamConn
from dtm.errors import DtmError, ErrPayloadTooLarge, ErrRequestTimeout, ErrSyntaxInvalidArgs

log = logging.getLogger("dtm.balancer")

CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
# Stop reading a client that sends more while its current request is being served.
MAX_PENDING_BYTES: Final = 1024 * 1024
MAX_PENDING_REQUESTS: Final = 64
HEAD_TICKS: Final = 4  # ticks per head timeout
LINGER_TICKS: Final = 2  # after a refusal, read and drop what the client still sends

_IDLE, _HEAD, _BODY = range(3)

Queued = tuple[RequestHead, bytearray] | bytes  # a request, or a final answer (then close)


class Site(Protocol):
    """What a `ClientConn` serves: its bounds, its totals, and how it answers a request."""

    name: str  # in refusals: "the <name> holds its maximum of ... connections"
    connections: int  # client connections open
    buffered: int  # request body bytes held across all client connections
    max_connections: int
    max_body_bytes: int
    max_buffered_bytes: int
    head_timeout_ms: int
    idle_ticks: int  # timer ticks an idle connection stays open
    totals: status.Counters

    def admit(self, head: RequestHead) -> bytes | None:
        """None if ``head`` may be served; else the answer that refuses it (then close)."""
        ...

    def local(self, head: RequestHead) -> bytes | None:
        """The complete answer for ``head`` if it needs no waiting; else None (`forward`)."""
        ...

    async def forward(self, client: ClientConn, head: RequestHead, body: bytes | bytearray) -> bool:
        """Serve ``head`` and ``body``, writing the answer to ``client.transport``; whether the
        connection may serve another request."""
        ...


class _Refused(Exception):
    """Raised inside the parser: answer ``answer`` and close."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer


class ClientConn(asyncio.Protocol):
    def __init__(self, site: Site) -> None:
        self.site = site
        self.transport: asyncio.Transport | None = None
        self.upstream: UpstreamConn | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._pairs: Pairs = []
        self._head_bytes = 0
        self._phase = _HEAD  # the first head must come within the head timeout too
        self._head: RequestHead | None = None
        self._body = bytearray()
        self._queue: deque[Queued] = deque()
        self._task: asyncio.Task[None] | None = None
        self._serving = 0  # body bytes of the request being served
        self._held = 0  # body bytes this connection counts in balancer.buffered
        self._continue_owed = False
        self._broken = False  # refused: no more parsing
        self._linger = -1  # ticks left before a refused connection is closed
        self._closing = False
        self._paused = False
        self._eof = False
        self._counted = False
        self._received = 0  # packets; the timers compare it between two ticks
        self._seen = 0
        self._still = 0  # ticks without a packet
        self._ticks = 0
        self._began = 0  # the tick the current head began
        self._timer: asyncio.TimerHandle | None = None
        self._writable: asyncio.Future[None] | None = None  # set while writing is paused

    @property
    def left(self) -> bool:
        """The client closed (or half-closed) its side: it no longer waits for answers."""
        return self._eof or self._closing

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        site = self.site
        site.connections += 1
        self._counted = True
        if site.connections > site.max_connections:
            site.totals.refused_connections += 1
            self._refuse(status.too_many_connections(site.name, site.max_connections))
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        self._received += 1
        if self._broken:
            return  # lingering after a refusal: drop it
        if self._phase == _HEAD:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except PARSER_ERRORS as exc:
            cause = exc.__context__
            if isinstance(cause, _Refused):
                self._refuse(cause.answer)
            else:
                err = parse_error(exc, client_side=True)
                assert isinstance(err, DtmError)
                self._refuse(status.error_response(err, keep_alive=False))
            return
        if self._phase == _HEAD and self._head_bytes > MAX_HEAD_BYTES:
            self._refuse_error(ErrSyntaxInvalidArgs(f"request head over {MAX_HEAD_BYTES} bytes"))
            return
        if self._task is None:
            if self._queue:
                self._advance()
        elif not self._paused and (
            len(self._queue) >= MAX_PENDING_REQUESTS
            or self._held - self._serving > MAX_PENDING_BYTES
        ):
            self._pause()

    def eof_received(self) -> bool:
        # A half-closed client may still be owed answers: close once they are written.
        self._eof = True
        if self._linger >= 0:
            self._close()
            return True
        return self._task is not None or bool(self._queue)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        site = self.site
        if self._counted:
            self._counted = False
            site.connections -= 1
        site.buffered -= self._held
        self._held = 0
        if self._timer is not None:
            self._timer.cancel()
        self._wake_writer()
        if self._task is not None:
            self._task.cancel()

    def pause_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.pause_reading()
        if self._writable is None:
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.resume_reading()
        self._wake_writer()

    def _wake_writer(self) -> None:
        waiter, self._writable = self._writable, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def writable(self) -> None:
        """Until the transport takes more bytes (at once if it does, or the client is gone)."""
        if self._writable is not None:
            await self._writable

    # ------------------------------------------------------------ llhttp callbacks

    def on_message_begin(self) -> None:
        self._phase = _HEAD
        self._began = self._ticks
        self._url = b""
        self._pairs = []
        self._head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > MAX_HEAD_BYTES:
            raise ErrSyntaxInvalidArgs(f"request target over {MAX_HEAD_BYTES} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._phase == _HEAD:  # (trailer fields of a chunked body are dropped)
            self._pairs.append((name, value))

    def on_headers_complete(self) -> None:
        p = self._parser
        head = request_head(
            p.get_method(), self._url, p.get_http_version(), self._pairs, p.should_keep_alive()
        )
        refusal = self.site.admit(head)
        if refusal is not None:
            raise _Refused(refusal)
        limit = self.site.max_body_bytes
        if head.content_length > limit:
            raise ErrPayloadTooLarge(f"body is {head.content_length} bytes; the limit is {limit}")
        self._head = head
        self._phase = _BODY
        self._still = 0
        if head.expect_continue and head.has_body:
            self._continue_owed = True
            if self._task is None and not self._queue:
                self._send_continue()

    def on_body(self, data: bytes) -> None:
        n = len(data)
        self._body += data
        self._held += n
        site = self.site
        site.buffered += n
        if len(self._body) > site.max_body_bytes:
            raise ErrPayloadTooLarge(
                f"chunked body is over the limit of {site.max_body_bytes} bytes"
            )
        if site.buffered > site.max_buffered_bytes:
            site.totals.refused_buffers += 1
            raise _Refused(status.buffers_full(site.name, site.max_buffered_bytes))

    def on_message_complete(self) -> None:
        head = self._head
        assert head is not None
        self._queue.append((head, self._body))
        self._body = bytearray()
        self._head = None
        self._continue_owed = False
        self._phase = _IDLE
        self._still = 0

    # ------------------------------------------------------------ serving

    def _advance(self) -> None:
        """Serve queued requests in order until one needs the network."""
        transport = self.transport
        assert transport is not None
        while self._task is None and not self._closing:
            if not self._queue:
                if self._eof and not self._broken:
                    self._close()
                elif self._paused and not self._broken:
                    self._paused = False
                    transport.resume_reading()
                if self._continue_owed:
                    self._send_continue()
                return
            item = self._queue.popleft()
            if isinstance(item, bytes):
                self._end_with(item)
                return
            head, body = item
            local = self.site.local(head)
            if local is not None:
                self._release(len(body))
                transport.write(local)
                if not head.keep_alive:
                    self._close()
                continue
            self._serving = len(body)
            self._task = asyncio.get_running_loop().create_task(self._serve(head, body))

    async def _serve(self, head: RequestHead, body: bytearray) -> None:
        keep = False
        try:
            keep = await self.site.forward(self, head, body)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug: never let it take the balancer down
            log.exception("serving %s %r failed", head.method, head.target[:200])
            keep = False
        finally:
            self._task = None
            self._release(len(body))
            self._serving = 0
        if keep and not self._closing:
            self._advance()
        else:
            self._close()

    def _release(self, n: int) -> None:
        self._held -= n
        self.site.buffered -= n

    def _send_continue(self) -> None:
        self._continue_owed = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(CONTINUE)

    def _refuse_error(self, err: DtmError) -> None:
        self._refuse(status.error_response(err, keep_alive=False))

    def _refuse(self, answer: bytes) -> None:
        """Stop parsing; answer ``answer`` after the requests queued before it, then close."""
        self._broken = True
        self._phase = _IDLE
        self._continue_owed = False
        self._queue.append(answer)
        if self._task is None:
            self._advance()

    def _end_with(self, answer: bytes) -> None:
        """Write a final answer, then linger: drop what the client still sends for a moment
        (closing with unread bytes would reset the connection and lose the answer)."""
        transport = self.transport
        assert transport is not None
        if transport.is_closing():
            return
        transport.write(answer)
        try:
            transport.write_eof()
        except (OSError, RuntimeError, NotImplementedError):
            self._close()
            return
        self._linger = LINGER_TICKS
        if self._paused:
            self._paused = False
            transport.resume_reading()
        if self._timer is None:
            self._arm()

    def _pause(self) -> None:
        self._paused = True
        assert self.transport is not None
        self.transport.pause_reading()

    # ------------------------------------------------------------ timers

    def _arm(self) -> None:
        tick = max(self.site.head_timeout_ms / HEAD_TICKS, 10) / 1000
        self._timer = asyncio.get_running_loop().call_later(tick, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self._closing:
            return
        self._ticks += 1
        if self._received != self._seen:
            self._seen = self._received
            self._still = 0
        else:
            self._still += 1
        if self._linger >= 0:
            self._linger -= 1
            if self._linger < 0:
                self._close()
                return
        elif not self._paused and not self._broken:
            phase = self._phase
            if phase == _HEAD and self._ticks - self._began >= HEAD_TICKS:
                self.site.totals.request_timeouts += 1
                self._refuse_error(ErrRequestTimeout("the request head did not arrive in time"))
            elif phase == _BODY and self._still >= HEAD_TICKS:
                self.site.totals.request_timeouts += 1
                self._refuse_error(ErrRequestTimeout("the request body stopped arriving"))
            elif (
                phase == _IDLE
                and self._task is None
                and not self._queue
                and self._still >= self.site.idle_ticks
            ):
                self._close()
                return
        if not self._closing and self._timer is None:
            self._arm()

    def _close(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.close()
