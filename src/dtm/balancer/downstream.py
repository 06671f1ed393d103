"""One client connection to the balancer: read requests in order, serve each, keep alive.

Requests on one connection are served one after another (pipelined ones wait in the buffer).
A request's body is read whole (up to the configured cap) before it is forwarded, so a request
that may be retried can be sent again byte for byte; answers are streamed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final, cast

from dtm.balancer import status
from dtm.balancer.http1 import MAX_HEAD_BYTES, ChunkedScanner, RequestHead, parse_request_head
from dtm.balancer.proxy import Balancer
from dtm.balancer.upstream import UpstreamConn
from dtm.errors import DtmError, ErrPayloadTooLarge, ErrSyntaxInvalidArgs

log = logging.getLogger("dtm.balancer")

CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
# Stop reading a client that sends more while its current request is being served.
MAX_PENDING_BYTES: Final = 1024 * 1024


class ClientConn(asyncio.Protocol):
    def __init__(self, balancer: Balancer) -> None:
        self.balancer = balancer
        self.transport: asyncio.Transport | None = None
        self.upstream: UpstreamConn | None = None
        self._buf = bytearray()
        self._head: RequestHead | None = None
        self._chunks: ChunkedScanner | None = None
        self._continued = False
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._reading_paused = False
        self._eof = False
        self._received = 0  # packets; the idle check compares it between two ticks
        self._idle_seen = -1
        self._idle_timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._arm_idle()

    def data_received(self, data: bytes) -> None:
        self._received += 1
        self._buf += data
        if self._task is None:
            self._advance()
        elif len(self._buf) > MAX_PENDING_BYTES and not self._reading_paused:
            self._reading_paused = True
            assert self.transport is not None
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        # A half-closed client may still be owed answers: close once they are written.
        self._eof = True
        return self._task is not None

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self._task is not None:
            self._task.cancel()

    def pause_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.resume_reading()

    def _arm_idle(self) -> None:
        delay = self.balancer.cfg.client_idle_timeout_ms / 1000
        self._idle_timer = asyncio.get_running_loop().call_later(delay, self._idle_tick)

    def _idle_tick(self) -> None:
        """Close a connection that received nothing for a whole tick while no request ran."""
        if self._closing:
            return
        if self._task is None and self._received == self._idle_seen:
            self._close()
            return
        self._idle_seen = self._received
        self._arm_idle()

    # ------------------------------------------------------------ requests

    def _advance(self) -> None:
        """Serve every complete request in the buffer until one needs the network."""
        transport = self.transport
        assert transport is not None
        while self._task is None and not self._closing:
            try:
                request = self._next_request()
            except DtmError as err:
                self._reject(err)
                return
            if request is None:
                if self._eof:
                    self._close()
                    return
                if self._reading_paused:
                    self._reading_paused = False
                    transport.resume_reading()
                return
            head, body = request
            local = self.balancer.local(head)
            if local is not None:
                transport.write(local)
                if not head.keep_alive:
                    self._close()
                continue
            self._task = asyncio.get_running_loop().create_task(self._serve(head, body))

    async def _serve(self, head: RequestHead, body: bytes) -> None:
        keep = False
        try:
            keep = await self.balancer.forward(self, head, body)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug: never let it take the balancer down
            log.exception("serving %s %r failed", head.method, head.target[:200])
            keep = False
        finally:
            self._task = None
        if keep and not self._closing:
            self._advance()
        else:
            self._close()

    def _next_request(self) -> tuple[RequestHead, bytes] | None:
        buf = self._buf
        head = self._head
        if head is None:
            while buf.startswith(b"\r\n"):  # tolerated between requests
                del buf[:2]
            end = buf.find(b"\r\n\r\n")
            if end > MAX_HEAD_BYTES or (end < 0 and len(buf) > MAX_HEAD_BYTES):
                raise ErrSyntaxInvalidArgs(f"request head over {MAX_HEAD_BYTES} bytes")
            if end < 0:
                return None
            head = parse_request_head(bytes(buf[:end]))
            del buf[: end + 4]
            limit = self.balancer.max_body_bytes
            if head.content_length > limit:
                raise ErrPayloadTooLarge(
                    f"body is {head.content_length} bytes; the limit is {limit}"
                )
            self._head = head
            self._continued = False
            self._chunks = (
                ChunkedScanner(keep_payload=True, limit=limit, bad=ErrSyntaxInvalidArgs)
                if head.chunked
                else None
            )
        if self._chunks is not None:
            used = self._chunks.feed(buf)
            del buf[:used]
            if not self._chunks.done:
                self._send_continue(head)
                return None
            body = bytes(self._chunks.payload)
            self._chunks = None
        else:
            n = head.content_length
            if len(buf) < n:
                self._send_continue(head)
                return None
            body = bytes(buf[:n])
            del buf[:n]
        self._head = None
        return head, body

    def _send_continue(self, head: RequestHead) -> None:
        if head.expect_continue and not self._continued and self.transport is not None:
            self._continued = True
            self.transport.write(CONTINUE)

    def _reject(self, err: DtmError) -> None:
        """Answer a malformed request and close: the stream can no longer be trusted."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(status.error_response(err, keep_alive=False))
        self._close()

    def _close(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.close()
