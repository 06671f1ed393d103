"""The handler's watch of each data node's version, which lets a list skip its round trip.

Rule: while lists are being read (`want`, at most `IDLE_S` ago), one long-poll per node asks its
``GET /v1/status?since=V&wait=WATCH_WAIT_MS`` straight at its ``[[node]]`` address, with the
cluster credential, and keeps what the node answered as its `Mark` (`dtm.core.pagefresh` decides
what a mark vouches for); after each answer it waits `COALESCE_S` so that a burst of writes costs
one answer, not one each. A failed or malformed answer drops the node's mark at once (and the
watch tries again after `RETRY_S`), as does a write this handler sent the node (`forget`): what
it wrote is a version the mark has not seen. With no list for `IDLE_S` the watch stops and keeps
no marks: a handler that only takes writes pays nothing for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Final

from dtm import wire
from dtm.core.pagefresh import WATCH_WAIT_MS, Mark
from dtm.errors import DtmError
from dtm.pool import Pool, SendFailed, netloc

log = logging.getLogger(__name__)

IDLE_S: Final = 5.0  # the watch stops this long after the last list
COALESCE_S: Final = 0.01  # after an answer, wait this long before asking again
RETRY_S: Final = 0.5  # after a failure, wait this long before asking again
MAX_ANSWER: Final = 64 * 1024  # a NodeStatus is far below this
_ANSWER_S: Final = WATCH_WAIT_MS / 1000 + 2.0  # the node holds the call WATCH_WAIT_MS at most


class NodeWatch:
    """Marks of the data nodes ``nodes`` (name -> (host, port)), kept while lists want them."""

    def __init__(
        self,
        nodes: Mapping[str, tuple[str, int]],
        *,
        auth_headers: Mapping[str, str] | None = None,
        client_ssl: ssl.SSLContext | None = None,
        connect_timeout_ms: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.nodes = dict(nodes)
        auth = "".join(f"{k}: {v}\r\n" for k, v in (auth_headers or {}).items())
        self._heads = {
            name: (f"Host: {netloc(host, port)}\r\n{auth}\r\n").encode("latin-1")
            for name, (host, port) in self.nodes.items()
        }
        self._client_ssl = client_ssl
        self._connect_s = connect_timeout_ms / 1000
        self._clock = clock
        self._marks: dict[str, Mark] = {}
        self._wanted = -IDLE_S
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    def now_ms(self) -> float:
        """The watch's clock, in the milliseconds its marks are stamped with."""
        return self._clock() * 1000

    def mark(self, node: str) -> Mark | None:
        """What ``node`` last reported (None: no report to go by)."""
        return self._marks.get(node)

    def want(self) -> None:
        """A list is being read: keep (or start) watching every node."""
        self._wanted = self._clock()
        if self._closed:
            return
        for name in self.nodes:
            if name not in self._tasks:
                self._tasks[name] = asyncio.get_running_loop().create_task(self._watch(name))

    def forget(self, node: str | None) -> None:
        """This handler wrote to ``node``: its mark is behind until the node reports again."""
        if node is not None:
            self._marks.pop(node, None)

    async def close(self) -> None:
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._marks.clear()

    async def _watch(self, name: str) -> None:
        host, port = self.nodes[name]
        pool = Pool(
            host,
            port,
            size=1,
            connect_timeout_s=self._connect_s,
            max_body=MAX_ANSWER,
            client_ssl=self._client_ssl,
        )
        since: int | None = None
        try:
            while self._clock() - self._wanted < IDLE_S:
                status = await self._ask(pool, name, since)
                if status is None:
                    self._marks.pop(name, None)
                    since = None
                    await asyncio.sleep(RETRY_S)
                    continue
                self._marks[name] = Mark(
                    status.node, status.epoch, status.last_version, status.applied, self.now_ms()
                )
                since = status.last_version
                await asyncio.sleep(COALESCE_S)
        finally:
            self._marks.pop(name, None)
            self._tasks.pop(name, None)
            pool.close()

    async def _ask(self, pool: Pool, name: str, since: int | None) -> wire.NodeStatus | None:
        """The node's status: at once (``since`` None), or once its version is not ``since``."""
        query = "" if since is None else f"?since={since}&wait={WATCH_WAIT_MS}"
        data = f"GET /v1/status{query} HTTP/1.1\r\n".encode("latin-1") + self._heads[name]
        try:
            answer = await pool.exchange_idempotent(data, "GET", _ANSWER_S)
        except SendFailed as exc:
            log.debug("watch of node %s: %s", name, exc.why)
            return None
        if answer.status != 200:
            return None
        try:
            status = wire.decode(answer.body, wire.NodeStatus, what="node status")
        except DtmError:
            return None
        return status if status.node == name else None
