"""`dtm handler --config FILE [--host H] [--port P]`: run the request handler in the foreground.

Rule: the shared edge (dtm.edge) reads the config and the credential and serves; this module
sets up the clock and the randomness and builds the server (`dtm.site`). Its task routes are
public; only /metrics and /v1/status need the cluster credential. On SIGTERM or SIGINT it stops
accepting and lets pending requests finish.
"""

from __future__ import annotations

import argparse
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from dtm import edge
from dtm.handler.app import make_site
from dtm.handler.copies import CopyWait
from dtm.handler.metrics import HandlerMetrics
from dtm.handler.pagecache import PageCache
from dtm.handler.push import Pusher
from dtm.handler.reads import SessionReads
from dtm.handler.service import TaskService
from dtm.handler.upstream import Upstream
from dtm.handler.users import UserDirectory
from dtm.handler.watch import NodeWatch

# The handler's internal endpoints: the cluster credential guards them (the rest is public).
INTERNAL_PATHS = frozenset({"/metrics", "/v1/status"})


def now_ms() -> int:
    """The wall clock in milliseconds: the times tasks are stamped with."""
    return time.time_ns() // 1_000_000


def _flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="listen on this address instead of [handler] host")
    parser.add_argument("--port", type=int, help="listen on this port instead of [handler] port")


def _listen(start: edge.Startup, ns: argparse.Namespace) -> edge.Listen:
    cfg = start.cluster.handler
    port = cfg.port if ns.port is None else ns.port
    return edge.Listen(ns.host or cfg.bind_host, port, cfg.head_timeout_ms, cfg.max_connections)


@asynccontextmanager
async def _build(
    start: edge.Startup, ns: argparse.Namespace, where: edge.Listen
) -> AsyncIterator[edge.Served]:
    cfg = start.cluster.handler
    balancers = start.cluster.balancer_urls
    balancer = ", ".join(balancers)
    label = "load balancers" if len(balancers) > 1 else "load balancer"
    metrics = HandlerMetrics(balancer)
    upstream = Upstream(
        balancers,
        cfg.timeout_ms,
        cfg.catch_up_wait_ms,
        metrics,
        auth_headers=start.auth_headers,
        client_ssl=start.client_ssl(),
        connect_timeout_ms=cfg.connect_timeout_ms,
        max_offset_ms=max(n.max_clock_offset_ms for n in start.cluster.node),
    )
    nodes = [n.name for n in start.cluster.node]
    addresses = {n.name: (n.host, n.port) for n in start.cluster.node}
    # The watch of the nodes' versions (it vouches only for kept pages), and the copies of
    # writes, go straight to the nodes.
    watch = (
        NodeWatch(
            addresses,
            auth_headers=start.auth_headers,
            client_ssl=start.client_ssl(),
            connect_timeout_ms=cfg.connect_timeout_ms,
        )
        if cfg.page_watch and cfg.page_cache_mib
        else None
    )
    reads = SessionReads(
        upstream,
        nodes,
        metrics,
        start.cluster.sync.url,
        client_ssl=start.client_ssl(),
        pages=PageCache(cfg.page_cache_mib << 20),
        watch=watch,
    )
    pusher = Pusher(
        addresses,
        auth_headers=start.auth_headers,
        client_ssl=start.client_ssl(),
        connect_timeout_ms=min(cfg.connect_timeout_ms, cfg.copy_wait_ms),
    )
    refuse = cfg.copy_shortfall == "refuse"
    copies = CopyWait(pusher, nodes, metrics, cfg.write_copies, cfg.copy_wait_ms, refuse)
    service = TaskService(upstream, metrics, now_ms, secrets.token_bytes, reads, copies)
    users = UserDirectory(start.cluster.users_path, time.monotonic)
    site = make_site(cfg, service, metrics, f"{where.host}:{where.port}", users)
    await upstream.start()
    try:
        await pusher.start()
        try:
            yield edge.Served(
                site,
                lambda: f"request handler serving on {where.url} ({label} {balancer})",
                needs_credential=INTERNAL_PATHS.__contains__,
            )
        finally:
            if watch is not None:
                await watch.close()
            await copies.close()
            await pusher.close()
    finally:
        await upstream.close()


HANDLER = edge.Component(
    prog="dtm handler",
    description="Run the request handler.",
    label=lambda ns: "handler",
    listen=_listen,
    build=_build,
    flags=_flags,
    gc_young_every=20_000,  # a request leaves few reference cycles, and its bodies are small
)


def main(argv: list[str]) -> int:
    return edge.run(HANDLER, argv)
