"""`dtm balancer --config FILE [--listen ADDRESS] [--port P]`: the HTTP load balancer in front of
the data nodes (a second one on the same machine takes ``--port``).

Rule: start-up goes through the shared edge (`dtm.edge`: config, credential, private umask, the
listen refusal, one start-up error reporter); the balancer serves with its own asyncio protocol,
not aiohttp, so only the serving loop is its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

import uvloop

from dtm import edge
from dtm.config import add_config_flag
from dtm.errors import ErrUnavailable

log = logging.getLogger("dtm.balancer")


async def serve(start: edge.Startup, listen: str = "", port: int | None = None) -> int:
    from dtm.balancer.downstream import ClientConn
    from dtm.balancer.health import run_health_checks
    from dtm.balancer.proxy import Balancer

    cfg = start.cluster
    loop = asyncio.get_running_loop()
    host = listen or cfg.balancer.bind_host
    port = cfg.balancer.port if port is None else port
    server_ssl = start.server_ssl()
    balancer = Balancer(cfg.balancer, cfg.node, start.credential, start.client_ssl())
    try:
        server = await loop.create_server(
            lambda: ClientConn(balancer),
            host,
            port,
            reuse_address=True,
            backlog=1024,
            ssl=server_ssl,
        )
    except OSError as exc:
        raise ErrUnavailable(f"cannot listen on {host}:{port}: {exc}") from None
    checks = loop.create_task(run_health_checks(balancer))
    edge.settle_heap()
    names = ", ".join(f"{n.name}={n.url}" for n in balancer.nodes)
    log.info("balancer listening on %s:%d in front of %s", host, port, names)
    await edge.until_stopped()
    log.info("balancer stopping")
    server.close()
    checks.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await checks
    balancer.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dtm balancer", description="HTTP load balancer in front of the data nodes."
    )
    add_config_flag(parser)
    parser.add_argument(
        "--listen", metavar="ADDRESS", help="bind this address instead of the config's"
    )
    parser.add_argument("--port", type=int, help="listen on this port instead of [balancer] port")
    args = parser.parse_args(argv)
    edge.configure_logging("balancer")

    def start() -> int:
        startup = edge.prepare(args.config, "balancer")
        b = startup.cluster.balancer
        port = b.port if args.port is None else args.port
        edge.check_listen(args.listen or b.bind_host, port, startup.credential)
        return uvloop.run(serve(startup, args.listen or "", port))

    return edge.report(start)
