"""The sync process's HTTP client for data nodes: prebuilt requests on a keep-alive pool per node,
typed answers, our errors.

Rule: every call has a timeout; every answer is framed by the strict llhttp parser of
`dtm.pool` and decoded into its wire struct; every failure (refused, reset, timed out,
non-2xx, malformed body) becomes one `DtmError` that names the node; a call whose reused
connection turned out closed before any answer came is sent once more (every sync call is
idempotent); names are resolved again for every new connection (no DNS cache), so a node that
moves to another address is reached there as soon as its old connection fails.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from typing import Final, TypeVar
from urllib.parse import urlsplit

from dtm import wire
from dtm.errors import DtmError, ErrSyntaxInvalidArgs, ErrTimeout, ErrUnavailable
from dtm.pool import Pool, Resolve, SendFailed

T = TypeVar("T")

MAX_ANSWER_BYTES: Final = 64 * 1024 * 1024
CONNECTIONS: Final = 16  # to each node: a feed read, a batch and a look at most, and some slack


class NodeClient:
    """Calls to the data nodes, by node name (``urls``: name -> ``http[s]://host:port``)."""

    def __init__(
        self,
        urls: Mapping[str, str],
        timeout_s: float = 10.0,
        auth_headers: Mapping[str, str] | None = None,
        client_ssl: ssl.SSLContext | None = None,
        resolve: Resolve | None = None,
    ) -> None:
        self.urls = dict(urls)
        self.timeout_s = timeout_s
        self.client_ssl = client_ssl  # TLS to https nodes (None: the system's defaults)
        self.resolve = resolve  # None: the system's getaddrinfo, asked on every new connection
        # The cluster credential (an Authorization header), sent with every call.
        auth = "".join(f"{k}: {v}\r\n" for k, v in (auth_headers or {}).items())
        self._where: dict[str, tuple[str, int, bool]] = {}
        self._heads: dict[str, bytes] = {}
        for name, url in self.urls.items():
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ErrSyntaxInvalidArgs(f"node {name}: not an http(s) URL: {url!r}")
            tls = parts.scheme == "https"
            port = parts.port or (443 if tls else 80)
            self._where[name] = (parts.hostname, port, tls)
            self._heads[name] = f"Host: {parts.netloc}\r\n{auth}".encode("latin-1")
        self._pools: dict[str, Pool] = {}

    async def __aenter__(self) -> NodeClient:
        for name, (host, port, tls) in self._where.items():
            ctx = (self.client_ssl or ssl.create_default_context()) if tls else None
            self._pools[name] = Pool(
                host,
                port,
                size=CONNECTIONS,
                connect_timeout_s=self.timeout_s,
                max_body=MAX_ANSWER_BYTES,
                client_ssl=ctx,
                resolve=self.resolve,
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools = {}

    def _request(
        self, node: str, method: str, target: str, body: bytes | None, limit: float
    ) -> bytes:
        head = [f"{method} {target} HTTP/1.1\r\n".encode(), self._heads[node]]
        if method == "POST":  # a write: the node must not apply it after we stopped waiting
            deadline = time.time_ns() // 1_000_000 + int(limit * 1000)
            head.append(f"{wire.DEADLINE_HEADER}: {deadline}\r\n".encode())
        if body is None:
            return b"".join((*head, b"\r\n"))
        length = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        return b"".join((*head, length.encode(), body))

    async def _call(
        self,
        node: str,
        method: str,
        target: str,
        type_: type[T],
        *,
        body: bytes | None = None,
        timeout_s: float | None = None,
    ) -> T:
        pool = self._pools.get(node)
        if pool is None:
            raise ErrUnavailable(f"{node}: the node client is not open")
        limit = self.timeout_s if timeout_s is None else timeout_s
        path = target.split("?", 1)[0]
        data = self._request(node, method, target, body, limit)
        try:
            async with asyncio.timeout(limit):
                answer = await pool.exchange_idempotent(data, method, limit)
        except TimeoutError:
            raise ErrTimeout(f"{node}: {method} {path} timed out after {limit:.1f}s") from None
        except SendFailed as exc:
            if exc.timeout and not exc.busy:
                raise ErrTimeout(f"{node}: {method} {path} timed out after {limit:.1f}s") from None
            raise ErrUnavailable(f"{node}: {method} {path} failed: {exc.why}") from None
        if answer.status >= 400:
            raise _error(node, answer.status, answer.body)
        try:
            return wire.decode(answer.body, type_, limit=MAX_ANSWER_BYTES, what=f"{node} answer")
        except DtmError as exc:
            raise ErrUnavailable(f"{node}: {method} {path}: {exc.message}") from None

    async def changes(self, node: str, since: int, limit: int, wait_ms: int) -> wire.ChangesPage:
        return await self._call(
            node,
            "GET",
            f"/v1/changes?since={since}&limit={limit}&wait={wait_ms}",
            wire.ChangesPage,
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
        return await self._call(node, "GET", f"/v1/digest?buckets={buckets}", wire.Digest)

    async def bucket(self, node: str, bucket: int, buckets: int) -> wire.BucketRows:
        target = f"/v1/digest/{bucket}?buckets={buckets}"
        return await self._call(node, "GET", target, wire.BucketRows)


def _error(node: str, status: int, data: bytes) -> DtmError:
    """The node's error, its message naming the node."""
    err = wire.error_from_answer(status, data, node)
    if err.message.startswith(node):
        return err
    return type(err)(f"{node}: {err.message}", err.candidates)
