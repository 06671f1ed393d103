"""Connections from the balancer to one data node: a keep-alive pool and the node's counters.

An `UpstreamConn` sends one request at a time and hands back the answer in two steps: the
parsed head (`send`), then either the whole body (`read_body`, for answers the balancer must
look into) or the body streamed straight to the client's transport (`stream_to`), byte for byte.
Every step runs under a timer: a node that accepts connections but never answers fails the step
with `UpstreamTimeout` after the read timeout (an idle timeout while a body streams).
"""

from __future__ import annotations

import asyncio
import time
from typing import Final, cast

from dtm.balancer.http1 import (
    MAX_HEAD_BYTES,
    ChunkedScanner,
    ResponseHead,
    UpstreamProtocolError,
    parse_response_head,
)

MAX_IDLE_PER_NODE: Final = 256
MAX_INSPECTED_BODY: Final = 1024 * 1024


class UpstreamTimeout(Exception):
    """The node did not answer within the read timeout."""


class UpstreamClosed(Exception):
    """The node closed or reset the connection before the answer was complete."""


_IDLE, _HEAD, _HELD, _BUFFER, _STREAM, _FAILED = range(6)


class UpstreamConn(asyncio.Protocol):
    """One HTTP/1.1 connection to a data node."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._state = _IDLE
        self._method = "GET"
        self._fut: asyncio.Future[ResponseHead] | None = None
        self._body_fut: asyncio.Future[bytes] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._idle_s = 0.0
        self._last_rx = 0.0
        self._remaining = 0
        self._until_eof = False
        self._chunks: ChunkedScanner | None = None
        self._sink: asyncio.Transport | None = None
        self.head: ResponseHead | None = None
        self.closed = False
        self.reusable = False
        self.received_any = False
        self._paused = False

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        state = self._state
        if state == _STREAM:
            self._last_rx = self._loop.time()
            self._forward(data)
        elif state == _HEAD:
            self.received_any = True
            self._buf += data
            self._try_head()
        elif state == _BUFFER:
            self._last_rx = self._loop.time()
            self._buf += data
            self._try_body()
        elif state == _HELD:
            self._buf += data
        else:  # bytes nobody asked for: the connection is out of step
            self._fail(UpstreamProtocolError("unexpected bytes from the node"))

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self._until_eof and self._state in (_STREAM, _BUFFER):
            self._finish()
        elif self._state in (_HEAD, _BUFFER, _STREAM):
            self._fail(UpstreamClosed("the node closed the connection mid-answer"))
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

    # ------------------------------------------------------------ steps

    def send(self, data: bytes, method: str, timeout_s: float) -> asyncio.Future[ResponseHead]:
        """Write one request; the future resolves to the answer's head."""
        assert self.transport is not None and self._state == _IDLE
        self._method = method
        self._state = _HEAD
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
        """Collect the whole body of the answer whose head `send` returned."""
        assert self._state == _HELD
        fut: asyncio.Future[bytes] = self._loop.create_future()
        self._body_fut = fut
        self._state = _BUFFER
        self._try_body()
        return fut

    def stream_to(self, sink: asyncio.Transport, head: bytes) -> asyncio.Future[bytes]:
        """Write ``head`` and then the body, as it arrives, to ``sink``."""
        assert self._state == _HELD
        fut: asyncio.Future[bytes] = self._loop.create_future()
        self._body_fut = fut
        self._sink = sink
        self._state = _STREAM
        data = bytes(self._buf)
        self._buf.clear()
        if data:
            self._forward(data, head)
        else:
            sink.write(head)
            if self._body_complete():
                self._finish()
        return fut

    def close(self) -> None:
        self.reusable = False
        self.closed = True
        self._cancel_timer()
        if self.transport is not None:
            self.transport.close()

    # ------------------------------------------------------------ internals

    def _try_head(self) -> None:
        while True:
            end = self._buf.find(b"\r\n\r\n")
            if end > MAX_HEAD_BYTES or (end < 0 and len(self._buf) > MAX_HEAD_BYTES):
                self._fail(UpstreamProtocolError("answer head too large"))
                return
            if end < 0:
                return
            try:
                head = parse_response_head(bytes(self._buf[:end]), self._method)
            except UpstreamProtocolError as exc:
                self._fail(exc)
                return
            del self._buf[: end + 4]
            if head.status >= 200:
                break  # an interim 1xx answer is skipped
        self.head = head
        self._remaining = max(head.content_length, 0)
        self._until_eof = head.content_length < 0
        self._chunks = ChunkedScanner() if head.chunked else None
        self._state = _HELD
        fut = self._fut
        if fut is not None and not fut.done():
            fut.set_result(head)

    def _body_complete(self) -> bool:
        if self._chunks is not None:
            return self._chunks.done
        return not self._until_eof and self._remaining == 0

    def _take(self, data: bytes) -> int:
        """How many of ``data`` belong to the body (advancing the framing)."""
        if self._chunks is not None:
            return self._chunks.feed(data)
        if self._until_eof:
            return len(data)
        n = min(self._remaining, len(data))
        self._remaining -= n
        return n

    def _forward(self, data: bytes, head: bytes = b"") -> None:
        try:
            used = self._take(data)
        except UpstreamProtocolError as exc:
            self._fail(exc)
            return
        assert self._sink is not None
        if used < len(data):
            self._fail(UpstreamProtocolError("bytes after the end of the answer"))
            return
        self._sink.write(head + data if head else data)
        if self._body_complete():
            self._finish()

    def _try_body(self) -> None:
        if len(self._buf) > MAX_INSPECTED_BODY:
            self._fail(UpstreamProtocolError("answer body too large to inspect"))
            return
        if self._chunks is not None:
            scanner = ChunkedScanner(keep_payload=True)
            try:
                used = scanner.feed(self._buf)
            except UpstreamProtocolError as exc:
                self._fail(exc)
                return
            if scanner.done:
                self._finish(bytes(scanner.payload), extra=used < len(self._buf))
            return
        if not self._until_eof and len(self._buf) >= self._remaining:
            body = bytes(self._buf[: self._remaining])
            self._finish(body, extra=len(self._buf) > self._remaining)

    def _finish(self, body: bytes | None = None, extra: bool = False) -> None:
        self._cancel_timer()
        head = self.head
        self.reusable = not self.closed and not extra and head is not None and head.keep_alive
        if body is None and self._state == _BUFFER:  # delimited by the end of the connection
            body = bytes(self._buf)
        self._buf.clear()
        self._state = _IDLE if self.reusable else _FAILED
        self._sink = None
        self.resume_reading()  # a pooled connection must read its next answer
        fut = self._body_fut
        self._body_fut = None
        if fut is not None and not fut.done():
            fut.set_result(body or b"")

    def _fail(self, exc: Exception) -> None:
        self._cancel_timer()
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

    def __init__(self, name: str, host: str, port: int, connect_timeout_s: float) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"
        self.upstream_header = f"X-Dtm-Upstream: {name}\r\n".encode()
        self.connect_timeout_s = connect_timeout_s
        self.healthy = True
        self.failed_checks = 0
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
            _, conn = await loop.create_connection(lambda: UpstreamConn(loop), self.host, self.port)
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
