"""`dtm balancer --config FILE`: the HTTP load balancer in front of the data nodes."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys

import uvloop

from dtm.auth import Credential, load_credential
from dtm.config import ClusterConfig, load_config
from dtm.edge import configure_logging, until_stopped
from dtm.errors import DtmError

log = logging.getLogger("dtm.balancer")


async def serve(cfg: ClusterConfig, credential: Credential | None) -> int:
    from dtm.balancer.downstream import ClientConn
    from dtm.balancer.gate import is_loopback
    from dtm.balancer.health import run_health_checks
    from dtm.balancer.proxy import Balancer

    loop = asyncio.get_running_loop()
    host, port = cfg.balancer.host, cfg.balancer.port
    if credential is None and not is_loopback(host):
        log.error(
            "refusing to listen on %s without the cluster credential "
            "([cluster] secret_file or $DTM_CLUSTER_SECRET)",
            host,
        )
        return 2
    balancer = Balancer(cfg.balancer, cfg.node, credential)
    try:
        server = await loop.create_server(
            lambda: ClientConn(balancer), host, port, reuse_address=True, backlog=1024
        )
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", host, port, exc)
        return 1
    checks = loop.create_task(run_health_checks(balancer))
    names = ", ".join(f"{n.name}={n.url}" for n in balancer.nodes)
    log.info("balancer listening on http://%s:%d in front of %s", host, port, names)
    await until_stopped()
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
    parser.add_argument("--config", required=True, help="the cluster TOML file")
    args = parser.parse_args(argv)
    configure_logging("balancer")
    try:
        cfg = load_config(args.config)
        credential = load_credential(cfg.secret_path, os.environ)
    except DtmError as err:
        print(f"{err.name}: {err.message}", file=sys.stderr)
        return err.exit_code
    return uvloop.run(serve(cfg, credential))
