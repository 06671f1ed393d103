"""The handler's only way to the data tier: HTTP to the load balancer, with timeouts.

Rule: a write sends ``X-Dtm-Hlc`` = the session's highest stamp and merges the answer's session
contribution into the session; session reads and deletes are planned by `dtm.handler.reads`
and sent through `_send`. aiohttp errors become dtm errors here and nowhere else.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

import aiohttp

from dtm import wire
from dtm.errors import (
    DtmError,
    ErrSyntaxInvalidArgs,
    ErrTimeout,
    ErrUnavailable,
)
from dtm.handler.metrics import HandlerMetrics
from dtm.handler.session import Session

T = TypeVar("T")

MAX_ANSWER = 64 * 1024 * 1024  # a page of rows is far below this


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer of the balancer, read in full."""

    status: int
    body: bytes
    session: str | None
    upstream: str | None = None  # the data node that answered (the balancer's X-Dtm-Upstream)


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
        # The cluster credential (an Authorization header), sent with every call.
        self._auth_headers = dict(auth_headers or {})
        self._client_ssl = client_ssl  # TLS to the balancer (None: plain HTTP)
        self._http: aiohttp.ClientSession | None = None
        self._timeouts: dict[int, aiohttp.ClientTimeout] = {}

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self._connections, keepalive_timeout=30, ssl=self._client_ssl or True
        )
        self._http = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("User-Agent",),
            headers=self._auth_headers,
        )

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # ------------------------------------------------------------ the one boundary

    async def _send(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        *,
        query: Mapping[str, str] | None = None,
        body: bytes | None = None,
        extra_ms: int = 0,
    ) -> Reply:
        """One request to the balancer; connection problems and timeouts become our errors."""
        if self._http is None:
            raise ErrUnavailable("the request handler is shutting down")
        ms = self.timeout_ms + extra_ms
        timeout = self._timeouts.get(ms)
        if timeout is None:
            timeout = self._timeouts[ms] = aiohttp.ClientTimeout(
                total=ms / 1000, connect=self.timeout_ms / 1000
            )
        where = f"the load balancer at {self.base_url}"
        start = time.perf_counter()
        outcome = "error"
        try:
            async with self._http.request(
                method,
                self.base_url + path,
                params=query,
                data=body,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            ) as resp:
                data = await _read_capped(resp, f"{where} answered {method} {path}")
                outcome = str(resp.status)
                return Reply(
                    resp.status,
                    data,
                    resp.headers.get(wire.SESSION_HEADER),
                    resp.headers.get("X-Dtm-Upstream"),
                )
        except TimeoutError:
            outcome = "timeout"
            raise ErrTimeout(f"{where} did not answer {method} {path} within {ms} ms") from None
        except aiohttp.ClientConnectorError as exc:
            reason = exc.os_error.strerror or str(exc.os_error)
            raise ErrUnavailable(f"cannot reach {where} ({reason.lower()})") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ErrUnavailable(
                f"{where} failed on {method} {path}: {str(exc) or type(exc).__name__}"
            ) from None
        finally:
            self.metrics.upstream_answered(method, outcome, time.perf_counter() - start)

    def _error(self, reply: Reply) -> DtmError:
        """The error an unsuccessful answer carries (its ErrorBody, or one made from its status)."""
        return wire.error_from_answer(reply.status, reply.body, "the load balancer")

    def _decode(self, reply: Reply, type_: type[T]) -> T:
        try:
            return wire.decode(reply.body, type_, what="answer")
        except ErrSyntaxInvalidArgs as exc:
            raise ErrUnavailable(
                f"the load balancer sent a malformed answer: {exc.message}"
            ) from None

    # ------------------------------------------------------------ writes

    async def put(self, key: str, value: bytes, s: Session) -> wire.Row:
        """Write ``value`` (JSON bytes) under ``key``; idempotent, so the balancer may retry it."""
        headers = {wire.HLC_HEADER: str(s.hlc), "Content-Type": "application/json"}
        body = b'{"value":' + value + b"}"
        reply = await self._send("PUT", f"/v1/kv/{key}", headers, body=body)
        if reply.status != 200:
            raise self._error(reply)
        s.absorb(reply.session)
        return self._decode(reply, wire.Row)


async def _read_capped(resp: aiohttp.ClientResponse, what: str) -> bytes:
    """The whole body of ``resp``, refusing one over MAX_ANSWER bytes."""
    if resp.content_length is not None:
        if resp.content_length > MAX_ANSWER:
            raise ErrUnavailable(f"{what} with too large a body ({resp.content_length} bytes)")
        return await resp.read()
    data = bytearray()
    while chunk := await resp.content.readany():
        data += chunk
        if len(data) > MAX_ANSWER:
            raise ErrUnavailable(f"{what} with too large a body")
    return bytes(data)
