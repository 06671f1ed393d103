"""The request handler's direct connections to the data nodes, for the copies of its writes.

Rule: only `POST /v1/replicate` of one write's copy (`dtm.core.copyplan`) goes this way — straight
to the node at its ``[[node]]`` address, with the cluster credential, over one bounded keep-alive
pool per node (`dtm.pool`: at most ``connections`` in flight to a node, the rest wait for
a slot within their timeout); everything else reaches the data tier through the balancers, which
refuse /v1/replicate. Every push is bounded by its timeout, on our side and on the node's: it
carries ``X-Dtm-Deadline`` = now + the timeout, so a node that reads it later never applies it
(an old copy landing after the sync purged a newer tombstone would bring the row back; the
purge waits far longer than this). It is sent again only when a reused connection turned out
closed before any answer (a copy is idempotent). Its answer is the node's
`wire.ReplicateResponse`, or None when none came in time or the node refused the call.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Final

from dtm import wire
from dtm.errors import DtmError
from dtm.pool import Pool, SendFailed, netloc

log = logging.getLogger(__name__)

CONNECTIONS: Final = 64  # to each node
MAX_ANSWER: Final = 1024 * 1024  # a ReplicateResponse of one row is far below this
LOG_EVERY_S: Final = 10.0  # a node that keeps failing pushes: at most one log line this often


class Pusher:
    """Pushes copies of writes to the data nodes ``nodes`` (name -> (host, port))."""

    def __init__(
        self,
        nodes: Mapping[str, tuple[str, int]],
        *,
        auth_headers: Mapping[str, str] | None = None,
        client_ssl: ssl.SSLContext | None = None,
        connections: int = CONNECTIONS,
        connect_timeout_ms: int = 1000,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.nodes = dict(nodes)
        auth = "".join(f"{k}: {v}\r\n" for k, v in (auth_headers or {}).items())
        self._heads = {
            name: f"POST /v1/replicate HTTP/1.1\r\nHost: {netloc(host, port)}\r\n{auth}"
            "Content-Type: application/json\r\n".encode("latin-1")
            for name, (host, port) in self.nodes.items()
        }
        self._client_ssl = client_ssl
        self._connections = connections
        self._connect_s = connect_timeout_ms / 1000
        self._clock = clock
        self._wall_ms = wall_ms
        self._logged: dict[str, float] = {}
        self._pools: dict[str, Pool] = {}

    async def start(self) -> None:
        self._pools = {
            name: Pool(
                host,
                port,
                size=self._connections,
                connect_timeout_s=self._connect_s,
                max_body=MAX_ANSWER,
                client_ssl=self._client_ssl,
            )
            for name, (host, port) in self.nodes.items()
        }

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools = {}

    async def push(
        self, node: str, copy: wire.ReplicateRequest, timeout_s: float
    ) -> wire.ReplicateResponse | None:
        """``node``'s answer to ``copy`` within ``timeout_s`` (None: no answer, or a refusal)."""
        pool = self._pools.get(node)
        if pool is None:
            return None
        body = wire.encode(copy)
        deadline = self._wall_ms() + round(timeout_s * 1000)
        tail = f"{wire.DEADLINE_HEADER}: {deadline}\r\nContent-Length: {len(body)}\r\n\r\n"
        data = b"".join((self._heads[node], tail.encode("latin-1"), body))
        try:
            async with asyncio.timeout(timeout_s):
                answer = await pool.exchange_idempotent(data, "POST", timeout_s)
        except TimeoutError:
            self._note(node, f"no answer within {timeout_s * 1000:.0f} ms")
            return None
        except SendFailed as exc:
            self._note(node, exc.why)
            return None
        if answer.status != 200:
            why = wire.error_from_answer(answer.status, answer.body, f"node {node}").message
            self._note(node, why)
            return None
        try:
            return wire.decode(answer.body, wire.ReplicateResponse, what="replicate answer")
        except DtmError as exc:
            self._note(node, exc.message)
            return None

    def _note(self, node: str, why: str) -> None:
        """Log a failed push, at most once per LOG_EVERY_S per node (a node that is down would
        otherwise log a line for every write)."""
        now = self._clock()
        last = self._logged.get(node)
        if last is not None and now - last < LOG_EVERY_S:
            return
        self._logged[node] = now
        log.warning("a copy of a write did not reach node %s: %s", node, why)
