"""A data node's view of its peers' clocks, and so of its own write fence.

Rule: every interval each other component of the cluster config gets one ``GET /healthz`` (open,
no credential) with a short timeout; an answer from the expected component that carries
``now_ms`` gives that peer's offset (`dtm.core.clockfence.sample`); a failed, slow or clockless
answer leaves the peer out of that round; the fence is `dtm.core.clockfence.fenced` over the
offsets of the round just finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import msgspec

from dtm import wire
from dtm.config import ClusterConfig
from dtm.core import clockfence

log = logging.getLogger(__name__)

INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class Peer:
    """One component to measure: its label in the status, what its /healthz must say, its URL."""

    label: str
    component: str
    name: str | None  # the expected Health.name (a node's name), None: any
    url: str


def peers_of(cluster: ClusterConfig, me: str) -> list[Peer]:
    """Every component of the cluster config but this node."""
    out = [Peer(n.name, "node", n.name, n.url) for n in cluster.node if n.name != me]
    out.append(Peer("balancer", "balancer", None, cluster.balancer.url))
    out.append(Peer("handler", "handler", None, cluster.handler.url))
    out.append(Peer("sync", "sync", None, cluster.sync.url))
    return out


class ClockWatch:
    """The measured offsets and the fence; `run` keeps them current until cancelled."""

    def __init__(
        self,
        peers: list[Peer],
        now_ms: Callable[[], int],
        max_offset_ms: int,
        interval_s: float = INTERVAL_S,
        on_round: Callable[[ClockWatch], None] | None = None,
        client_ssl: ssl.SSLContext | None = None,
    ) -> None:
        self.client_ssl = client_ssl  # TLS for the peers' /healthz (None: plain HTTP)
        self.peers = peers
        self.now_ms = now_ms
        self.max_offset_ms = max_offset_ms
        self.interval_s = interval_s
        self.on_round = on_round
        self.offsets: dict[str, int] = {}
        self.fenced = False
        self.rounds = 0
        self._task: asyncio.Task[None] | None = None

    async def _measure(self, http: aiohttp.ClientSession, peer: Peer) -> int | None:
        t_send = self.now_ms()
        try:
            async with http.get(f"{peer.url}/healthz") as resp:
                body = await resp.read()
                if resp.status != 200:
                    return None
        except (TimeoutError, aiohttp.ClientError, OSError):
            return None
        t_recv = self.now_ms()
        try:
            health = msgspec.json.decode(body, type=wire.Health)
        except msgspec.DecodeError:  # validation errors included
            return None
        if health.component != peer.component or peer.name not in (None, health.name):
            return None
        return clockfence.sample(t_send, t_recv, health.now_ms, self.max_offset_ms)

    async def check_once(self, http: aiohttp.ClientSession) -> None:
        """One round over every peer; then decide the fence."""
        found = await asyncio.gather(*(self._measure(http, p) for p in self.peers))
        self.offsets = {
            p.label: off for p, off in zip(self.peers, found, strict=True) if off is not None
        }
        was, self.fenced = self.fenced, clockfence.fenced(self.offsets, self.max_offset_ms)
        self.rounds += 1
        if self.fenced != was:
            far = clockfence.far_peers(self.offsets, self.max_offset_ms)
            if self.fenced:
                log.error(
                    "clock fence on: this clock is beyond %d ms from %s (offsets %s); "
                    "refusing client writes until it is fixed",
                    self.max_offset_ms,
                    ", ".join(far),
                    self.offsets,
                )
            else:
                log.warning(
                    "clock fence off: offsets %s are within %d ms", self.offsets, self.max_offset_ms
                )
        if self.on_round is not None:
            self.on_round(self)

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=min(self.interval_s, 1.0))
        connector = aiohttp.TCPConnector(ssl=self.client_ssl or True)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            while True:
                await self.check_once(http)
                await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        if self.peers and self._task is None:
            self._task = asyncio.create_task(self.run(), name="clock-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
