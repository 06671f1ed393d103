"""The sync process's HTTP client for data nodes: one aiohttp session, typed answers, our errors.

Rule: every call has a timeout; every answer is decoded into its wire struct; every failure
(refused, reset, timed out, non-2xx, malformed body) becomes one `DtmError` that names the node;
names are resolved again for every new connection (no DNS cache), so a node that moves to
another address is reached there as soon as its old connection fails.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any, TypeVar

import aiohttp
from aiohttp.abc import AbstractResolver

from dtm import wire
from dtm.errors import DtmError, ErrTimeout, ErrUnavailable

T = TypeVar("T")

MAX_ANSWER_BYTES = 64 * 1024 * 1024


def connector_options(
    client_ssl: ssl.SSLContext | None, resolver: AbstractResolver | None
) -> dict[str, Any]:
    """The sync's connection pool: no DNS cache (aiohttp keeps names 10 s by default, and this
    client once kept them 300 s, which left a moved node unreplicated for five minutes)."""
    opts: dict[str, Any] = {
        "limit": 0,
        "limit_per_host": 16,
        "use_dns_cache": False,
        "ssl": client_ssl or True,
    }
    if resolver is not None:
        opts["resolver"] = resolver
    return opts


class NodeClient:
    """Calls to the data nodes, by node name."""

    def __init__(
        self,
        urls: dict[str, str],
        timeout_s: float = 10.0,
        auth_headers: dict[str, str] | None = None,
        client_ssl: ssl.SSLContext | None = None,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.resolver = resolver  # None: aiohttp's default (the system's getaddrinfo)
        self.client_ssl = client_ssl  # TLS to the nodes (None: plain HTTP)
        self.urls = dict(urls)
        self.timeout_s = timeout_s
        # The cluster credential (an Authorization header), sent with every call.
        self.auth_headers = dict(auth_headers or {})
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> NodeClient:
        conn = aiohttp.TCPConnector(**connector_options(self.client_ssl, self.resolver))
        self._session = aiohttp.ClientSession(
            connector=conn, timeout=aiohttp.ClientTimeout(total=None), raise_for_status=False
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(
        self,
        node: str,
        method: str,
        path: str,
        type_: type[T],
        *,
        params: dict[str, str] | None = None,
        body: bytes | None = None,
        timeout_s: float | None = None,
    ) -> T:
        if self._session is None:
            raise ErrUnavailable("the node client is not open")
        url = self.urls[node] + path
        limit = self.timeout_s if timeout_s is None else timeout_s
        headers = dict(self.auth_headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        if method == "POST":  # a write: the node must not apply it after we stopped waiting
            headers[wire.DEADLINE_HEADER] = str(time.time_ns() // 1_000_000 + int(limit * 1000))
        try:
            async with asyncio.timeout(limit):
                async with self._session.request(
                    method, url, params=params, data=body, headers=headers
                ) as resp:
                    if (resp.content_length or 0) > MAX_ANSWER_BYTES:
                        raise ErrUnavailable(f"{node}: answer over {MAX_ANSWER_BYTES} bytes")
                    data = await resp.read()
                    status = resp.status
        except TimeoutError:
            raise ErrTimeout(f"{node}: {method} {path} timed out after {limit:.1f}s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ErrUnavailable(f"{node}: {method} {path} failed: {exc}") from None
        if status >= 400:
            raise _error(node, status, data)
        try:
            return wire.decode(data, type_, limit=MAX_ANSWER_BYTES, what=f"{node} answer")
        except DtmError as exc:
            raise ErrUnavailable(f"{node}: {method} {path}: {exc.message}") from None

    async def changes(self, node: str, since: int, limit: int, wait_ms: int) -> wire.ChangesPage:
        params = {"since": str(since), "limit": str(limit), "wait": str(wait_ms)}
        return await self._call(
            node,
            "GET",
            "/v1/changes",
            wire.ChangesPage,
            params=params,
            timeout_s=self.timeout_s + wait_ms / 1000.0,
        )

    async def replicate(self, node: str, batch: wire.ReplicateRequest) -> wire.ReplicateResponse:
        return await self._call(
            node, "POST", "/v1/replicate", wire.ReplicateResponse, body=wire.encode(batch)
        )

    async def purge(self, node: str, rows: list[wire.RowId]) -> wire.PurgeResponse:
        body = wire.encode(wire.PurgeRequest(rows))
        return await self._call(node, "POST", "/v1/purge", wire.PurgeResponse, body=body)

    async def digest(self, node: str, buckets: int) -> wire.Digest:
        params = {"buckets": str(buckets)}
        return await self._call(node, "GET", "/v1/digest", wire.Digest, params=params)

    async def bucket(self, node: str, bucket: int, buckets: int) -> wire.BucketRows:
        params = {"buckets": str(buckets)}
        return await self._call(node, "GET", f"/v1/digest/{bucket}", wire.BucketRows, params=params)


def _error(node: str, status: int, data: bytes) -> DtmError:
    """The node's error, its message naming the node."""
    err = wire.error_from_answer(status, data, node)
    if err.message.startswith(node):
        return err
    return type(err)(f"{node}: {err.message}", err.candidates)
