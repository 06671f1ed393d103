"""The handler's only way to the data tier: HTTP to the load balancers, with timeouts.

Rule: session reads and deletes are planned by `dtm.handler.reads` and sent through `_send`. A
write sends ``X-Dtm-Hlc`` = the session's highest stamp and is never sent twice: once its bytes
may have reached a balancer, a lost answer is ErrMaybeApplied (a read goes again once on a
fresh connection if a reused one broke before answering). With ``node``, ``X-Dtm-Node`` pins the
request to that data node. Transport failures become dtm errors here and nowhere else.

With several balancers, each request tries them in the order `dtm.core.backoff` gives (in turn,
one that failed lately last) and moves on as `dtm.core.failover` says: at once when the request
was never sent, and for a read also when it was sent but not answered; all within the one
timeout of the request. A connection to one of several may take ``connect_timeout_ms``. A
request that none of them could take at all (no connection could be opened: the balancers are
restarting) goes round again every ``RECONNECT_STEP_S`` for up to ``RECONNECT_S`` within its
timeout, writes too, since none of its bytes left: a crashed balancer that is back within that
time costs latency, not failures.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from dtm import wire
from dtm.core import backoff
from dtm.core.failover import after_no_answer
from dtm.errors import (
    DtmError,
    ErrMaybeApplied,
    ErrSyntaxInvalidArgs,
    ErrTimeout,
    ErrUnavailable,
)
from dtm.handler.metrics import HandlerMetrics
from dtm.handler.session import Session
from dtm.pool import Answer, Pool, SendFailed

# A request no balancer could take goes round again this often, for up to this long.
RECONNECT_S: Final = 5.0
RECONNECT_STEP_S: Final = 0.05
MAX_ANSWER: Final = 64 * 1024 * 1024  # a page of rows is far below this
# What a request target may hold: keys, IDs, numbers and the separators between them.
_TARGET: Final = re.compile(r"/[A-Za-z0-9._:/?&=-]{0,600}")
_SESSION: Final = wire.SESSION_HEADER.lower().encode()
_UPSTREAM: Final = wire.UPSTREAM_HEADER.lower().encode()
_WRITES: Final = frozenset({"PUT", "DELETE", "POST", "PATCH"})


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer of the balancer, read in full; ``node``: the data node that answered."""

    status: int
    body: bytes
    session: str | None
    node: str | None = None
    etag: str | None = None  # a scan page's validator (dtm.core.pagetag)


@dataclass(frozen=True, slots=True)
class _Balancer:
    """One load balancer: where it is, its requests' fixed header lines, its name in errors."""

    host: str
    port: int
    fixed: bytes
    where: str


class Upstream:
    """A keep-alive client of the load balancers at ``base_urls``."""

    def __init__(
        self,
        base_urls: str | Sequence[str],
        timeout_ms: int,
        catch_up_wait_ms: int,
        metrics: HandlerMetrics,
        connections: int = 256,
        auth_headers: Mapping[str, str] | None = None,
        client_ssl: ssl.SSLContext | None = None,
        connect_timeout_ms: int = 1000,
        clock: Callable[[], float] = time.monotonic,
        max_offset_ms: int = 0,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not urls:
            raise ValueError("no balancer URL")
        self.base_urls = [u.rstrip("/") for u in urls]
        self.base_url = self.base_urls[0]
        self.timeout_ms = timeout_ms
        self.catch_up_wait_ms = catch_up_wait_ms
        self.metrics = metrics
        self._connections = connections
        # One balancer: its connection may take the whole timeout, as there is nothing else.
        self._connect_ms = min(timeout_ms, connect_timeout_ms) if len(urls) > 1 else timeout_ms
        self._address_ms = min(timeout_ms, connect_timeout_ms)
        # Every request's fixed lines: Host and the cluster credential (an Authorization header).
        auth = "".join(f"{k}: {v}\r\n" for k, v in (auth_headers or {}).items())
        self._balancers: list[_Balancer] = []
        for base in self.base_urls:
            url = urlsplit(base)
            if url.hostname is None or url.port is None or url.scheme not in ("http", "https"):
                raise ValueError(f"not a balancer URL with host and port: {base!r}")
            fixed = f"Host: {url.netloc}\r\n{auth}".encode("latin-1")
            where = f"the load balancer at {base}"
            self._balancers.append(_Balancer(url.hostname, url.port, fixed, where))
        self._client_ssl = client_ssl  # TLS to the balancers (None: plain HTTP)
        self._clock = clock
        self._wall_ms = wall_ms
        self._max_offset_ms = max_offset_ms
        self._marks = [backoff.HEALTHY] * len(urls)
        self._turn = 0
        self._pools: list[Pool] = []

    async def start(self) -> None:
        self._pools = [
            Pool(
                b.host,
                b.port,
                size=self._connections,
                connect_timeout_s=self._connect_ms / 1000,
                max_body=MAX_ANSWER,
                client_ssl=self._client_ssl,
                address_timeout_s=self._address_ms / 1000,
            )
            for b in self._balancers
        ]

    async def close(self) -> None:
        for pool in self._pools:
            pool.close()
        self._pools = []

    # ------------------------------------------------------------ the one boundary

    def _request(
        self, method: str, target: str, extra: str, body: bytes | None, fixed: bytes
    ) -> bytes:
        """The request's bytes: start line, fixed headers, ``extra`` header lines, the body."""
        if _TARGET.fullmatch(target) is None:
            raise ErrSyntaxInvalidArgs(f"not a request target for the balancer: {target[:80]!r}")
        start = f"{method} {target} HTTP/1.1\r\n".encode()
        if body is None:
            return b"".join((start, fixed, extra.encode("latin-1"), b"\r\n"))
        length = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        return b"".join((start, fixed, extra.encode("latin-1"), length.encode(), body))

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
        """One request to a balancer; connection problems and timeouts become our errors.

        ``extra`` holds whole header lines (each ending in CRLF), made only of our own values."""
        pools = self._pools
        if not pools:
            raise ErrUnavailable("the request handler is shutting down")
        if node is not None:
            extra += f"{wire.NODE_HEADER}: {node}\r\n"
        if _TARGET.fullmatch(target) is None:
            raise ErrSyntaxInvalidArgs(f"not a request target for the balancer: {target[:80]!r}")
        ms = self.timeout_ms + extra_ms
        repeatable = method not in _WRITES
        if not repeatable:
            # When we stop waiting, less the clocks' max offset: no copy of this write may be
            # stamped later, so the client's next write orders after all of them (core/deadline).
            until = self._wall_ms() + max(ms - self._max_offset_ms, ms // 2)
            extra += f"{wire.DEADLINE_HEADER}: {until}\r\n"
        start = time.perf_counter()
        deadline = self._clock() + ms / 1000
        outcome = "error"
        loop = asyncio.get_running_loop()
        reconnect_until = loop.time() + min(RECONNECT_S, ms / 1000)
        last: tuple[_Balancer, SendFailed] | None = None
        try:
            while True:
                self._turn += 1
                for i in backoff.order(self._marks, self._clock(), self._turn):
                    left = deadline - self._clock()
                    if left <= 0 and last is not None:
                        break
                    b = self._balancers[i]
                    data = self._request(method, target, extra, body, b.fixed)
                    try:
                        answer = await self._exchange(pools[i], data, method, max(left, 0.001))
                    except SendFailed as exc:
                        if not exc.busy:
                            self._marks[i] = backoff.failed(self._marks[i], self._clock())
                        last = (b, exc)
                        if after_no_answer(sent=exc.sent, repeatable=repeatable) == "maybe-applied":
                            break
                        continue
                    self._marks[i] = backoff.HEALTHY
                    outcome = str(answer.status)
                    return _reply(answer)
                assert last is not None
                failed = last[1]
                if failed.sent or failed.timeout or failed.busy or self._pools is not pools:
                    break
                if loop.time() + RECONNECT_STEP_S >= reconnect_until:
                    break
                await asyncio.sleep(RECONNECT_STEP_S)  # every balancer refused: restarting?
            assert last is not None
            outcome = "timeout" if last[1].timeout else "error"
            raise self._failure(method, target, ms, *last) from None
        finally:
            self.metrics.upstream_answered(method, outcome, time.perf_counter() - start)

    async def _exchange(self, pool: Pool, data: bytes, method: str, timeout_s: float) -> Answer:
        """One balancer's answer; a read goes once more if a reused connection was stale, or, with
        this one balancer only, if a fresh one broke unanswered (it died: is it back?); with
        several, the next balancer takes that read."""
        try:
            return await pool.exchange(data, method, timeout_s)
        except SendFailed as exc:
            again = exc.reused or len(self._balancers) == 1
            if not (exc.stale and again and method not in _WRITES):
                raise
            return await pool.exchange(data, method, timeout_s)  # a read, once more

    def _failure(
        self, method: str, target: str, ms: int, b: _Balancer, exc: SendFailed
    ) -> DtmError:
        where = b.where if len(self._balancers) == 1 else f"{b.where} (the last one tried)"
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

    async def put(self, key: str, value: bytes, s: Session, node: str | None = None) -> Reply:
        """Write ``value`` (JSON bytes) under ``key``; the node's answer. Sent once: a lost
        answer is ErrMaybeApplied (the balancer itself may retry it on another node: it is
        idempotent)."""
        extra = f"{wire.HLC_HEADER}: {s.hlc}\r\n"
        body = b'{"value":' + value + b"}"
        reply = await self._send("PUT", f"/v1/kv/{key}", extra, body=body, node=node)
        if reply.status != 200:
            raise self._error(reply)
        s.absorb(reply.session)
        return reply


def _reply(answer: Answer) -> Reply:
    return Reply(
        answer.status,
        answer.body,
        answer.header(_SESSION),
        answer.header(_UPSTREAM),
        answer.header(b"etag"),
    )
