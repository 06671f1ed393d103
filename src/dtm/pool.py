"""A bounded keep-alive pool of HTTP/1.1 connections to one server, for prebuilt requests: the
handler's to a load balancer and to each data node (its pushed copies), the sync's to each node.

Rule: at most ``size`` requests are in flight (the rest wait for a slot within their timeout);
an idle connection is reused only if it is still open and was idle less than ``IDLE_S``, and a
new one resolves the server's name again (no DNS cache); a request's bytes are written at most
once per call: a failure after the write is `SendFailed` with ``sent=True`` (the caller decides
what that means for a write), one before it (no connection) ``sent=False``. A new connection
tries each address the name resolves to (several: a swarm's dnsrr), each within the connect
timeout. Answers are framed by
the balancer's strict llhttp parser (`dtm.balancer.upstream.UpstreamConn`) and capped at
``max_body`` bytes; every step runs under the conn's timer.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Final

from dtm.balancer.http1 import Pairs, UpstreamProtocolError
from dtm.balancer.upstream import UpstreamClosed, UpstreamConn, UpstreamTimeout

# Below the servers' idle timeout (60 s by default: the balancer's and every aiohttp server's),
# so a pooled connection is not one the server is closing as we write to it.
IDLE_S: Final = 20.0

# Resolves a name (host, port) to its addresses, asked on every new connection.
Resolve = Callable[[str, int], Awaitable[list[str]]]
_BROKEN = (UpstreamTimeout, UpstreamClosed, UpstreamProtocolError, OSError)


class Answer:
    """One answer of the server, read whole."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: Pairs, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, lower_name: bytes) -> str | None:
        """The first value of the header named ``lower_name`` (lower case), or None."""
        for name, value in self.headers:
            if name.lower() == lower_name:
                return value.decode("latin-1")
        return None


class SendFailed(Exception):
    """No usable answer. ``sent``: the request's bytes were written (they may have been acted
    on); ``timeout``: no answer in time; ``stale``: the connection broke before any byte of an
    answer came (a reused one the server had closed while it sat idle, or a server that died
    with the request unanswered; ``reused`` says which); ``busy``: every connection stayed in
    use (the server is not to blame)."""

    def __init__(
        self,
        why: str,
        *,
        sent: bool,
        timeout: bool = False,
        stale: bool = False,
        reused: bool = False,
        busy: bool = False,
    ):
        super().__init__(why)
        self.why = why
        self.sent = sent
        self.timeout = timeout
        self.stale = stale
        self.reused = reused
        self.busy = busy


class Pool:
    """Connections to one server at ``host:port`` (TLS with ``client_ssl``)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        size: int,
        connect_timeout_s: float,
        max_body: int,
        client_ssl: ssl.SSLContext | None = None,
        address_timeout_s: float | None = None,
        resolve: Resolve | None = None,
    ) -> None:
        self.host = host
        self.resolve = resolve  # None: the system's getaddrinfo
        self.port = port
        self.size = size
        self.connect_timeout_s = connect_timeout_s
        # A name with several addresses (a swarm's dnsrr): each but the last gets this long, so
        # an address cut off from us does not cost the whole connect timeout.
        self.address_timeout_s = min(address_timeout_s or connect_timeout_s, connect_timeout_s)
        self.max_body = max_body
        self.client_ssl = client_ssl
        self._idle: list[tuple[UpstreamConn, float]] = []
        self._slots = asyncio.Semaphore(size)
        self._closed = False

    async def exchange(self, data: bytes, method: str, timeout_s: float) -> Answer:
        """Send ``data`` (one whole request) and read the answer; `SendFailed` if none came."""
        if self._closed:
            raise SendFailed("the connection pool is closed", sent=False)
        slots = self._slots
        if slots.locked():
            try:
                async with asyncio.timeout(timeout_s):
                    await slots.acquire()
            except TimeoutError:
                raise SendFailed(
                    f"all {self.size} connections stayed busy", sent=False, timeout=True, busy=True
                ) from None
        else:
            await slots.acquire()
        try:
            return await self._exchange(data, method, timeout_s)
        finally:
            slots.release()

    async def exchange_idempotent(self, data: bytes, method: str, timeout_s: float) -> Answer:
        """`exchange` for a request that may be applied twice: sent once more, on a fresh
        connection, when a reused one turned out closed before any answer came (the server
        closed it while it sat idle)."""
        try:
            return await self.exchange(data, method, timeout_s)
        except SendFailed as exc:
            if not (exc.stale and exc.reused):
                raise
        return await self.exchange(data, method, timeout_s)

    async def _exchange(self, data: bytes, method: str, timeout_s: float) -> Answer:
        loop = asyncio.get_running_loop()
        conn = self._pooled(loop.time())
        reused = conn is not None
        if conn is None:
            conn = await self._connect(loop)
        try:
            head = await conn.send(data, method, timeout_s)
            body = await conn.read_body()
        except _BROKEN as exc:
            conn.close()
            stale = not conn.received_any and isinstance(exc, UpstreamClosed)
            raise SendFailed(
                str(exc) or type(exc).__name__,
                sent=True,
                timeout=isinstance(exc, UpstreamTimeout),
                stale=stale,
                reused=reused,
            ) from None
        except BaseException:
            conn.close()
            raise
        if conn.reusable and not conn.closed and not self._closed:
            self._idle.append((conn, loop.time()))
        else:
            conn.close()
        return Answer(head.status, head.headers, body)

    def _pooled(self, now: float) -> UpstreamConn | None:
        """The most recently used idle connection that is still fit for a request."""
        idle = self._idle
        while idle:
            conn, since = idle.pop()
            transport = conn.transport
            if conn.closed or transport is None or transport.is_closing() or now - since > IDLE_S:
                conn.close()
                continue
            return conn
        return None

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> UpstreamConn:
        """A new connection: the name resolved now (no cache), then each address in turn."""
        wait = self.connect_timeout_s
        try:
            async with asyncio.timeout(wait):
                if self.resolve is not None:
                    addresses = await self.resolve(self.host, self.port)
                else:
                    infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
                    addresses = [str(info[4][0]) for info in infos]
        except TimeoutError:
            raise SendFailed(
                f"resolving {self.host} timed out after {wait * 1000:.0f} ms",
                sent=False,
                timeout=True,
            ) from None
        except OSError as exc:
            raise SendFailed(f"cannot resolve {self.host} ({_reason(exc)})", sent=False) from None
        failure = SendFailed(f"{self.host} resolves to no address", sent=False)
        addresses = list(dict.fromkeys(addresses))
        for i, address in enumerate(addresses):
            last = i == len(addresses) - 1
            wait = self.connect_timeout_s if last else self.address_timeout_s
            try:
                return await self._connect_to(loop, address, wait)
            except SendFailed as exc:
                failure = exc
        raise failure

    async def _connect_to(
        self, loop: asyncio.AbstractEventLoop, address: str, wait: float
    ) -> UpstreamConn:
        max_body = self.max_body
        try:
            async with asyncio.timeout(wait):
                _, conn = await loop.create_connection(
                    lambda: UpstreamConn(loop, max_body),
                    address,
                    self.port,
                    ssl=self.client_ssl,
                    server_hostname=self.host if self.client_ssl else None,
                )
        except TimeoutError:
            raise SendFailed(
                f"connect to {address} timed out after {wait * 1000:.0f} ms",
                sent=False,
                timeout=True,
            ) from None
        except OSError as exc:
            raise SendFailed(_reason(exc), sent=False) from None
        return conn

    def close(self) -> None:
        self._closed = True
        for conn, _ in self._idle:
            conn.close()
        self._idle.clear()


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


def netloc(host: str, port: int) -> str:
    """``host:port`` as a Host header (and a URL) writes it: an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
