"""`dtm handler --config FILE [--host H] [--port P]`: run the request handler in the foreground.

Rule: configuration, logging, the clock and the randomness are set up here and nowhere else; the
handler serves until SIGTERM or SIGINT, then stops accepting and lets pending requests finish.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import time

import uvloop
from aiohttp import web

from dtm.config import ClusterConfig, load_config
from dtm.edge import configure_logging, until_stopped
from dtm.errors import DtmError
from dtm.handler.app import make_app
from dtm.handler.metrics import HandlerMetrics
from dtm.handler.service import TaskService
from dtm.handler.upstream import Upstream
from dtm.handler.users import UserDirectory

log = logging.getLogger("dtm.handler")

SHUTDOWN_TIMEOUT_S = 10.0


def now_ms() -> int:
    """The wall clock in milliseconds: the times tasks are stamped with."""
    return time.time_ns() // 1_000_000


async def serve(cluster: ClusterConfig, host: str, port: int) -> int:
    """Serve the task API until a stop signal."""
    cfg = cluster.handler
    balancer = cluster.balancer.url
    metrics = HandlerMetrics(balancer)
    upstream = Upstream(balancer, cfg.timeout_ms, cfg.catch_up_wait_ms, metrics)
    service = TaskService(upstream, metrics, now_ms, secrets.token_bytes)
    users = UserDirectory(cluster.users_path, time.monotonic)
    app = make_app(upstream, service, metrics, f"{host}:{port}", users)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
        await site.start()
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", host, port, exc)
        await runner.cleanup()
        return 1
    log.info("request handler serving on http://%s:%d (load balancer %s)", host, port, balancer)
    await until_stopped()
    log.info("request handler stopping: finishing pending requests")
    await runner.cleanup()
    log.info("request handler stopped")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dtm handler", description="Run the request handler.")
    parser.add_argument("--config", required=True, help="the cluster TOML file")
    parser.add_argument("--host", help="listen on this address instead of [handler] host")
    parser.add_argument("--port", type=int, help="listen on this port instead of [handler] port")
    args = parser.parse_args(argv)
    configure_logging("handler")
    try:
        cluster = load_config(args.config)
        host = args.host or cluster.handler.host
        port = cluster.handler.port if args.port is None else args.port
        if not 0 < port < 65536:
            log.error("ErrSyntaxInvalidArgs: bad port %d", port)
            return 2
        return uvloop.run(serve(cluster, host, port))
    except DtmError as err:
        log.error("%s: %s", err.name, err.message)
        return err.exit_code
