"""Active health checks: every node's `GET /healthz`, every health interval, with a short timeout.

A node that fails ``health_fall`` checks in a row is ejected; one passing check readmits it.
(Failed requests eject a node at once, in `proxy`.) A passing answer's `wire.Health` also says
whether the node's clock fences client writes (``fenced``); the balancer sends writes elsewhere.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from dtm.balancer.proxy import Balancer
from dtm.balancer.upstream import Node
from dtm.errors import DtmError
from dtm.wire import Health, decode

log = logging.getLogger("dtm.balancer")


async def _check_once(session: aiohttp.ClientSession, node: Node) -> str | None:
    """None if the node is healthy, else why not."""
    try:
        async with session.get(f"{node.url}/healthz") as resp:
            body = await resp.read()
            if resp.status != 200:
                return f"/healthz answered {resp.status}"
    except TimeoutError:
        return "/healthz timed out"
    except (aiohttp.ClientError, OSError) as exc:
        return f"/healthz failed: {exc or type(exc).__name__}"
    try:
        fenced = decode(body, Health, limit=64 * 1024, what="/healthz answer").fenced
    except DtmError:
        fenced = False  # an answer from before fencing existed, or garbage: not fenced
    if fenced != node.fenced:
        node.fenced = fenced
        log.warning("%s %s client writes", node.name, "fences" if fenced else "takes")
    return None


async def _watch(balancer: Balancer, session: aiohttp.ClientSession, node: Node) -> None:
    interval = balancer.cfg.health_interval_ms / 1000
    fall = max(1, balancer.cfg.health_fall)
    while True:
        problem = await _check_once(session, node)
        node.checks += 1
        if problem is None:
            balancer.readmit(node)
        else:
            node.failed_checks += 1
            node.failed_checks_total += 1
            if node.failed_checks >= fall:
                balancer.eject(node, problem)
        await asyncio.sleep(interval)


async def run_health_checks(balancer: Balancer) -> None:
    """Check every node until cancelled."""
    cfg = balancer.cfg
    timeout = aiohttp.ClientTimeout(
        total=cfg.health_timeout_ms / 1000, connect=cfg.connect_timeout_ms / 1000
    )
    connector = aiohttp.TCPConnector(limit_per_host=2, ssl=balancer.client_ssl or True)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(*(_watch(balancer, session, node) for node in balancer.nodes))
