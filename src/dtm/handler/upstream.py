"""The handler's only way to the data tier: HTTP to the load balancer, with timeouts.

Rule: session reads and deletes are planned by `dtm.handler.reads` and sent through `_send`. A
write sends ``X-Dtm-Hlc`` = the session's highest stamp and is never sent twice: once its bytes
may have reached the balancer, a lost answer is ErrMaybeApplied (a read goes again once on a
fresh connection if the one it used broke before answering). A request that could not be sent at
all (no connection could be opened: the balancer is restarting) is tried again every
``RECONNECT_STEP_S`` for up to ``RECONNECT_S`` within its timeout, writes too, since none of its
bytes left: a crashed balancer that is back within that time costs latency, not failures. With
``node``, ``X-Dtm-Node`` pins the request to that data node. Transport failures become dtm errors
here and nowhere else.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from dtm import wire
from dtm.errors import (
    DtmError,
    ErrMaybeApplied,
    ErrSyntaxInvalidArgs,
    ErrTimeout,
    ErrUnavailable,
)
from dtm.handler.metrics import HandlerMetrics
from dtm.handler.pool import Answer, Pool, SendFailed
from dtm.handler.session import Session

MAX_ANSWER: Final = 64 * 1024 * 1024  # a page of rows is far below this
# What a request target may hold: keys, IDs, numbers and the separators between them.
_TARGET: Final = re.compile(r"/[A-Za-z0-9._:/?&=-]{0,600}")
_SESSION: Final = wire.SESSION_HEADER.lower().encode()
_UPSTREAM: Final = wire.UPSTREAM_HEADER.lower().encode()
_WRITES: Final = frozenset({"PUT", "DELETE", "POST", "PATCH"})
# A balancer restarted by its supervisor answers again within about a second (a Python start).
RECONNECT_S: Final = 5.0
RECONNECT_STEP_S: Final = 0.05


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer of the balancer, read in full; ``node``: the data node that answered."""

    status: int
    body: bytes
    session: str | None
    node: str | None = None


class Upstream:
    """A keep-alive client of the load balancer at ``base_url``."""

    def __init__(
        self,
        base_url: str,
        timeout_ms: int,
        catch_up_wait_ms: int,
        metrics: HandlerMetrics,
        connections: int = 256,
        auth_headers: Mapping[str, str] | None = None,
        client_ssl: ssl.SSLContext | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_ms = timeout_ms
        self.catch_up_wait_ms = catch_up_wait_ms
        self.metrics = metrics
        self._connections = connections
        url = urlsplit(self.base_url)
        if url.hostname is None or url.port is None or url.scheme not in ("http", "https"):
            raise ValueError(f"not a balancer URL with host and port: {base_url!r}")
        self._host = url.hostname
        self._port = url.port
        # Every request's fixed lines: Host and the cluster credential (an Authorization header).
        fixed = [f"Host: {url.netloc}\r\n"]
        fixed += [f"{k}: {v}\r\n" for k, v in (auth_headers or {}).items()]
        self._fixed = "".join(fixed).encode("latin-1")
        self._client_ssl = client_ssl  # TLS to the balancer (None: plain HTTP)
        self._where = f"the load balancer at {self.base_url}"
        self._pool: Pool | None = None

    async def start(self) -> None:
        self._pool = Pool(
            self._host,
            self._port,
            size=self._connections,
            connect_timeout_s=self.timeout_ms / 1000,
            max_body=MAX_ANSWER,
            client_ssl=self._client_ssl,
        )

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    # ------------------------------------------------------------ the one boundary

    def _request(self, method: str, target: str, extra: str, body: bytes | None) -> bytes:
        """The request's bytes: start line, fixed headers, ``extra`` header lines, the body."""
        if _TARGET.fullmatch(target) is None:
            raise ErrSyntaxInvalidArgs(f"not a request target for the balancer: {target[:80]!r}")
        start = f"{method} {target} HTTP/1.1\r\n".encode()
        if body is None:
            return b"".join((start, self._fixed, extra.encode("latin-1"), b"\r\n"))
        length = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        return b"".join((start, self._fixed, extra.encode("latin-1"), length.encode(), body))

    async def _send(
        self,
        method: str,
        target: str,
        extra: str = "",
        *,
        body: bytes | None = None,
        extra_ms: int = 0,
        node: str | None = None,
    ) -> Reply:
        """One request to the balancer; connection problems and timeouts become our errors.

        ``extra`` holds whole header lines (each ending in CRLF), made only of our own values."""
        pool = self._pool
        if pool is None:
            raise ErrUnavailable("the request handler is shutting down")
        if node is not None:
            extra += f"{wire.NODE_HEADER}: {node}\r\n"
        data = self._request(method, target, extra, body)
        ms = self.timeout_ms + extra_ms
        start = time.perf_counter()
        outcome = "error"
        try:
            try:
                answer = await self._exchange(pool, data, method, ms / 1000)
            except SendFailed as exc:
                if not (exc.stale and method not in _WRITES):
                    raise
                answer = await self._exchange(pool, data, method, ms / 1000)  # a read, once more
            outcome = str(answer.status)
        except SendFailed as exc:
            outcome = "timeout" if exc.timeout else "error"
            raise self._failure(method, target, ms, exc) from None
        finally:
            self.metrics.upstream_answered(method, outcome, time.perf_counter() - start)
        return _reply(answer)

    async def _exchange(self, pool: Pool, data: bytes, method: str, timeout_s: float) -> Answer:
        """``pool.exchange``, tried again while no connection could be opened (nothing was sent),
        for up to `RECONNECT_S` and within ``timeout_s``."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        until = start + min(RECONNECT_S, timeout_s)
        while True:
            left = start + timeout_s - loop.time()
            try:
                return await pool.exchange(data, method, max(0.001, left))
            except SendFailed as exc:
                if exc.sent or exc.timeout or self._pool is not pool:
                    raise
                if loop.time() + RECONNECT_STEP_S >= until:
                    raise
            await asyncio.sleep(RECONNECT_STEP_S)

    def _failure(self, method: str, target: str, ms: int, exc: SendFailed) -> DtmError:
        where = self._where
        path = target.split("?", 1)[0]
        if not exc.sent:
            if exc.timeout:
                return ErrTimeout(f"cannot reach {where} ({exc.why})")
            return ErrUnavailable(f"cannot reach {where} ({exc.why})")
        if method in _WRITES:
            why = f"did not answer within {ms} ms" if exc.timeout else f"failed ({exc.why})"
            return ErrMaybeApplied(
                f"{where} {why} after {method} {path} was sent: the write may have been applied"
            )
        if exc.timeout:
            return ErrTimeout(f"{where} did not answer {method} {path} within {ms} ms")
        return ErrUnavailable(f"{where} failed on {method} {path}: {exc.why}")

    def _error(self, reply: Reply) -> DtmError:
        """The error an unsuccessful answer carries (its ErrorBody, or one made from its status)."""
        return wire.error_from_answer(reply.status, reply.body, "the load balancer")

    # ------------------------------------------------------------ writes

    async def put(self, key: str, value: bytes, s: Session, node: str | None = None) -> None:
        """Write ``value`` (JSON bytes) under ``key``. Sent once: a lost answer is
        ErrMaybeApplied (the balancer itself may retry it on another node: it is idempotent)."""
        extra = f"{wire.HLC_HEADER}: {s.hlc}\r\n"
        body = b'{"value":' + value + b"}"
        reply = await self._send("PUT", f"/v1/kv/{key}", extra, body=body, node=node)
        if reply.status != 200:
            raise self._error(reply)
        s.absorb(reply.session)


def _reply(answer: Answer) -> Reply:
    return Reply(answer.status, answer.body, answer.header(_SESSION), answer.header(_UPSTREAM))
