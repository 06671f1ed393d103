"""The handler's only way to the data tier: HTTP to the load balancer, with timeouts.

Rule: a read first goes with ``X-Dtm-Wait: 0`` and the session token; if no node has caught up
(409 ErrNotCaughtUp) it is repeated once with ``X-Dtm-Wait: catch_up_wait_ms``; still 409 is
ErrNotCaughtUp for the client, never stale data. A write sends ``X-Dtm-Hlc`` = the session's
highest stamp. Every successful answer's session contribution is merged into the session. aiohttp
errors become dtm errors here and nowhere else.
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
    ErrNoDataFound,
    ErrNotCaughtUp,
    ErrSyntaxInvalidArgs,
    ErrTimeout,
    ErrUnavailable,
)
from dtm.handler.metrics import HandlerMetrics
from dtm.handler.session import Session, contribution_of

T = TypeVar("T")

MAX_ANSWER = 64 * 1024 * 1024  # a page of rows is far below this


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer of the balancer, read in full."""

    status: int
    body: bytes
    session: str | None


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
                return Reply(resp.status, data, resp.headers.get(wire.SESSION_HEADER))
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

    # ------------------------------------------------------------ reads

    async def _read(self, path: str, query: Mapping[str, str] | None, s: Session) -> Reply:
        """A session read: 200 or 404 (returned), anything else raised.

        First with ``X-Dtm-Wait: 0``, then once with ``catch_up_wait_ms``. A 409 from a node
        at another epoch than the token names for it (wiped or restored) puts the node's new
        epoch in the token and reads again at once, so a session outlives a wiped cluster.
        """
        heard: set[str] = set()  # nodes whose 409 this read has seen
        stale_tries = 3 * (len(s.token.versions) + 1)
        waited = False
        while True:
            wait = self.catch_up_wait_ms if waited else 0
            headers = {wire.WAIT_HEADER: str(wait)}
            if s.token.versions:
                headers[wire.SESSION_HEADER] = s.header
            reply = await self._send("GET", path, headers, query=query, extra_ms=wait)
            if reply.status == 200:
                s.absorb(reply.session)
                return reply
            err = self._error(reply)
            if isinstance(err, ErrNoDataFound):
                s.absorb(reply.session)
                return reply
            if not isinstance(err, ErrNotCaughtUp):
                raise err
            if stale_tries > 0:
                stale_tries -= 1
                answer = contribution_of(reply.session)
                if answer is not None:
                    if s.adopt_new_epochs(answer):
                        continue
                    heard.update(answer.versions)
                if s.nodes() - heard:  # a node the token names may yet show a new epoch
                    continue
            if not waited and self.catch_up_wait_ms > 0:
                waited = True
                self.metrics.catch_up_retry()
                continue
            self.metrics.not_caught_up()
            raise ErrNotCaughtUp(
                "no data node has caught up with this session's earlier reads and writes yet "
                f"(waited {self.catch_up_wait_ms} ms; {err.message}); try again shortly"
            )

    async def get_row(self, key: str, s: Session) -> wire.Row | None:
        """The live row for ``key``, or None if it is absent or deleted."""
        reply = await self._read(f"/v1/kv/{key}", None, s)
        if reply.status == 404:
            return None
        return self._decode(reply, wire.Row)

    async def scan(self, after: str | None, limit: int, s: Session) -> wire.RowPage:
        """Live rows with key > ``after``, in key order."""
        query = {"limit": str(limit)}
        if after:
            query["after"] = after
        reply = await self._read("/v1/kv", query, s)
        if reply.status == 404:
            raise self._error(reply)
        return self._decode(reply, wire.RowPage)

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

    async def delete(self, key: str, s: Session) -> bool:
        """Delete ``key``: True when this call wrote the tombstone, False when the node that
        answered did not hold the key live (already deleted, or not replicated there yet).

        The delete carries the session token like a read (without waiting), so it goes to a
        replica that holds what the session saw: the balancer moves on from one that answers
        ErrNotCaughtUp."""
        headers = {wire.HLC_HEADER: str(s.hlc), wire.WAIT_HEADER: "0"}
        if s.token.versions:
            headers[wire.SESSION_HEADER] = s.header
        reply = await self._send("DELETE", f"/v1/kv/{key}", headers)
        if reply.status == 200:
            s.absorb(reply.session)
            return True
        err = self._error(reply)
        if not isinstance(err, ErrNoDataFound | ErrNotCaughtUp):
            raise err
        return False  # not live there, or no replica caught up: the caller reads it again


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
