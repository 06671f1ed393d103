"""Connections from the balancer to one data node: a keep-alive pool and the node's counters.

An `UpstreamConn` sends one request at a time and hands back the answer in two steps: the
parsed head (`send`), then either the whole body (`read_body`, for answers the balancer must
look into) or the body streamed to the client's transport (`stream_to`) as llhttp parses it:
as is under a Content-Length, re-chunked when the node chunked it (chunk extensions and
trailers stop here). Every step runs under a timer: a node that accepts connections but never
answers fails the step with `UpstreamTimeout` after the read timeout (an idle timeout while a
body streams).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Final, cast

import httptools

from dtm.balancer.http1 import (
    MAX_HEAD_BYTES,
    PARSER_ERRORS,
    Pairs,
    ResponseHead,
    UpstreamProtocolError,
    parse_error,
    response_head,
)

MAX_IDLE_PER_NODE: Final = 256
MAX_INSPECTED_BODY: Final = 1024 * 1024
LAST_CHUNK: Final = b"0\r\n\r\n"


class UpstreamTimeout(Exception):
    """The node did not answer within the read timeout."""


class UpstreamClosed(Exception):
    """The node closed or reset the connection before the answer was complete."""


class _Extra(Exception):
    """Raised inside the parser to stop at bytes that follow a complete answer."""


_IDLE, _HEAD, _HELD, _BUFFER, _STREAM, _FAILED = range(6)


class UpstreamConn(asyncio.Protocol):
    """One HTTP/1.1 connection to a data node; it is also its llhttp parser's callback target."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_body: int = MAX_INSPECTED_BODY) -> None:
        self._loop = loop
        self._max_body = max_body  # the most body bytes `read_body` collects
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._pairs: Pairs = []
        self._head_bytes = 0
        self._in_head = False
        self._out: list[bytes] = []  # body pieces parsed from this packet, to stream on
        self._body = bytearray()
        self._complete = False
        self._state = _IDLE
        self._method = "GET"
        self._fut: asyncio.Future[ResponseHead] | None = None
        self._body_fut: asyncio.Future[bytes] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._idle_s = 0.0
        self._last_rx = 0.0
        self._sink: asyncio.Transport | None = None
        self.head: ResponseHead | None = None
        self.closed = False
        self.reusable = False
        self.received_any = False
        self._paused = False
        self._extra = False
        self._error: Exception | None = None

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        state = self._state
        if state in (_IDLE, _FAILED):  # bytes nobody asked for: out of step
            self._fail(UpstreamProtocolError("unexpected bytes from the node"))
            return
        self.received_any = True
        self._last_rx = self._loop.time()
        if self._in_head:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except PARSER_ERRORS as exc:
            if isinstance(exc.__context__, _Extra):
                self._extra = True  # the answer is whole; the connection is not reused
                return
            self._fail(parse_error(exc, client_side=False))
            return
        if self._out:
            self._flush()
        if self._in_head and self._head_bytes > MAX_HEAD_BYTES:
            self._fail(UpstreamProtocolError("answer head too large"))

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        head = self.head
        state = self._state
        if head is not None and head.content_length < 0 and state in (_HELD, _STREAM, _BUFFER):
            self._complete = True  # the end of the connection ends this body
        if state in (_STREAM, _BUFFER):
            if self._complete:
                self._finish()
            else:
                self._fail(UpstreamClosed("the node closed the connection mid-answer"))
        elif state == _HEAD:
            self._fail(UpstreamClosed("the node closed the connection mid-answer"))
        elif state == _IDLE:
            self._state = _FAILED

    def pause_reading(self) -> None:
        """Back-pressure: the client is not taking the body as fast as the node sends it."""
        if self.transport is not None and not self.closed and not self._paused:
            self._paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed and self._paused:
            self._paused = False
            self.transport.resume_reading()

    # ------------------------------------------------------------ llhttp callbacks

    def on_message_begin(self) -> None:
        if self._state != _HEAD:
            if self._complete and self._state == _HELD:
                raise _Extra
            raise UpstreamProtocolError("bytes after the end of the answer")
        self._pairs = []
        self._in_head = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._in_head:  # (trailer fields of a chunked answer are dropped)
            self._pairs.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        status = self._parser.get_status_code()
        if status < 200:
            return  # an interim 1xx answer is skipped
        head = response_head(status, self._pairs, self._parser.should_keep_alive(), self._method)
        self.head = head
        self._state = _HELD
        if self._method == "HEAD":  # llhttp cannot know a HEAD answer has no body
            head.keep_alive = False
            self._complete = True
        fut = self._fut
        if fut is not None and not fut.done():
            fut.set_result(head)

    def on_body(self, data: bytes) -> None:
        if self._complete:
            return
        state = self._state
        if state == _STREAM:
            self._out.append(data)  # written once per packet, in `_flush`
        elif state == _BUFFER:
            self._body += data
            if len(self._body) > self._max_body:
                raise UpstreamProtocolError("answer body too large to inspect")
        else:
            self._body += data  # parsed before the caller took the answer

    def on_message_complete(self) -> None:
        if self._state == _HEAD:
            return  # the end of an interim answer
        if self._complete:
            return
        self._complete = True
        if self._state in (_STREAM, _BUFFER):
            self._finish()

    # ------------------------------------------------------------ steps

    def send(self, data: bytes, method: str, timeout_s: float) -> asyncio.Future[ResponseHead]:
        """Write one request; the future resolves to the answer's head."""
        assert self.transport is not None and self._state == _IDLE
        self._method = method
        self._state = _HEAD
        self._head_bytes = 0
        self._complete = False
        self._error = None
        self.reusable = False
        self.received_any = False
        self.head = None
        self._fut = self._loop.create_future()
        self._idle_s = timeout_s
        self._last_rx = self._loop.time()
        self._timer = self._loop.call_later(timeout_s, self._on_timer)
        self.transport.write(data)
        return self._fut

    def read_body(self) -> asyncio.Future[bytes]:
        """Collect the whole body (de-chunked) of the answer whose head `send` returned."""
        fut: asyncio.Future[bytes] = self._loop.create_future()
        if self._state != _HELD or self.head is None:
            fut.set_exception(self._error or UpstreamClosed("the answer broke off"))
            return fut
        self._body_fut = fut
        self._state = _BUFFER
        self.head.chunked = False  # the body is handed on whole
        self._settle()
        return fut

    def stream_to(self, sink: asyncio.Transport, head: bytes) -> asyncio.Future[bytes]:
        """Write ``head`` and then the body, as llhttp parses it, to ``sink``."""
        fut: asyncio.Future[bytes] = self._loop.create_future()
        if self._state != _HELD or self.head is None:
            fut.set_exception(self._error or UpstreamClosed("the answer broke off"))
            return fut
        self._body_fut = fut
        self._sink = sink
        self._state = _STREAM
        if self._body:
            self._out.append(bytes(self._body))
            self._body.clear()
        self._flush(head)
        self._settle()
        return fut

    def close(self) -> None:
        self.reusable = False
        self.closed = True
        self._cancel_timer()
        if self.transport is not None:
            self.transport.close()

    # ------------------------------------------------------------ internals

    def _settle(self) -> None:
        """After the caller took the answer: finish it if llhttp already saw its end."""
        if self._complete:
            self._finish()
        elif self.closed:
            self._fail(UpstreamClosed("the node closed the connection mid-answer"))

    def _flush(self, before: bytes = b"") -> None:
        """Write the body pieces parsed so far to the client, as one chunk if chunked."""
        out = self._out
        sink = self._sink
        assert sink is not None and self.head is not None
        if not out:
            if before:
                sink.write(before)
            return
        if self.head.chunked:
            size = sum(len(p) for p in out)
            out.insert(0, b"%s%x\r\n" % (before, size))
            out.append(b"\r\n")
        elif before:
            out.insert(0, before)
        sink.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()

    def _finish(self) -> None:
        self._cancel_timer()
        head = self.head
        if self._state == _STREAM and head is not None and self._sink is not None:
            if self._out:
                self._flush()
            if head.chunked:
                self._sink.write(LAST_CHUNK)
        self.reusable = not self.closed and not self._extra and head is not None and head.keep_alive
        body = bytes(self._body)
        self._body.clear()
        self._state = _IDLE if self.reusable else _FAILED
        self._sink = None
        self.resume_reading()  # a pooled connection must read its next answer
        fut = self._body_fut
        self._body_fut = None
        if fut is not None and not fut.done():
            fut.set_result(body)

    def _fail(self, exc: Exception) -> None:
        self._cancel_timer()
        self._error = exc
        self._state = _FAILED
        self.reusable = False
        for fut in (self._fut, self._body_fut):
            if fut is not None and not fut.done():
                fut.set_exception(exc)
        self._fut = None
        self._body_fut = None
        if self.transport is not None:
            self.transport.close()

    def _on_timer(self) -> None:
        self._timer = None
        if self._state in (_BUFFER, _STREAM):
            idle = self._loop.time() - self._last_rx
            if idle < self._idle_s:
                self._timer = self._loop.call_later(self._idle_s - idle, self._on_timer)
                return
        elif self._state != _HEAD:
            return
        self._fail(UpstreamTimeout(f"no answer within {self._idle_s * 1000:.0f} ms"))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class Node:
    """One data node: address, health, idle connections and counters."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        connect_timeout_s: float,
        client_ssl: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.client_ssl = client_ssl  # TLS to this node (None: plain HTTP)
        self.url = f"{'https' if client_ssl else 'http'}://{host}:{port}"
        self.upstream_header = f"X-Dtm-Upstream: {name}\r\n".encode()
        self.connect_timeout_s = connect_timeout_s
        self.healthy = True
        self.answered = False  # a health check has passed once (before: it is still starting)
        self.fenced = False  # its clock is beyond the max offset: it refuses client writes
        self.failed_checks = 0  # in a row (one passing check resets it)
        self.checks = 0  # health checks made, and failed, since the balancer started
        self.failed_checks_total = 0
        self.idle: list[UpstreamConn] = []
        self.in_flight = 0
        self.requests = 0
        self.failures = 0
        self.retries = 0
        self.ejections = 0
        self.readmissions = 0
        self.ejected_at = 0.0

    async def acquire(self, loop: asyncio.AbstractEventLoop) -> tuple[UpstreamConn, bool]:
        """A connection ready for a request, and whether it was reused from the pool.

        Raises OSError or TimeoutError when a new connection cannot be opened in time.
        """
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn, True
        async with asyncio.timeout(self.connect_timeout_s):
            _, conn = await loop.create_connection(
                lambda: UpstreamConn(loop),
                self.host,
                self.port,
                ssl=self.client_ssl,
                server_hostname=self.host if self.client_ssl else None,
            )
        return conn, False

    def release(self, conn: UpstreamConn) -> None:
        if conn.reusable and not conn.closed and len(self.idle) < MAX_IDLE_PER_NODE:
            self.idle.append(conn)
        else:
            conn.close()

    def eject(self) -> bool:
        """Mark unhealthy; True if it was healthy until now."""
        if not self.healthy:
            return False
        self.healthy = False
        self.ejections += 1
        self.ejected_at = time.monotonic()
        for conn in self.idle:
            conn.close()
        self.idle.clear()
        return True

    def readmit(self) -> bool:
        """Mark healthy; True if it was ejected until now."""
        self.failed_checks = 0
        if self.healthy:
            return False
        self.healthy = True
        self.readmissions += 1
        return True
