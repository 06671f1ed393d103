"""`dtm node --config FILE --name NAME`: run one data node in the foreground.

Rule: configuration and logging are set up here and nowhere else; the node serves until SIGTERM
or SIGINT, then stops accepting, lets pending requests (and so pending writes) finish, and closes
its store.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import uvloop
from aiohttp import web

from dtm.config import NodeConfig, load_config
from dtm.edge import configure_logging, until_stopped
from dtm.errors import DtmError
from dtm.node.app import SERVICE, make_app
from dtm.node.clockwatch import Peer, peers_of
from dtm.storage.sqlite import SqliteStore

log = logging.getLogger("dtm.node")

SHUTDOWN_TIMEOUT_S = 10.0


class CommitHook:
    """Forwards the store's commit callback to the service, which exists only after the store."""

    def __init__(self) -> None:
        self.target: Callable[[int], None] | None = None

    def __call__(self, group_size: int) -> None:
        if self.target is not None:
            self.target(group_size)


def new_epoch() -> str:
    """A fresh random id for a new database."""
    return secrets.token_hex(8)


async def serve(cfg: NodeConfig, db_path: Path, peers: list[Peer] | None = None) -> int:
    """Open the store, serve HTTP until a stop signal, then shut down gracefully."""
    offset = cfg.clock_offset_ms

    def now_ms() -> int:
        return time.time_ns() // 1_000_000 + offset

    hook = CommitHook()
    store = SqliteStore.open(
        db_path,
        cfg.name,
        now_ms,
        cfg.max_clock_offset_ms,
        cfg.max_group,
        new_epoch=new_epoch,
        on_commit=hook,
    )

    def wall_ms() -> int:  # the machine's clock, without the test-only offset
        return time.time_ns() // 1_000_000

    app = make_app(store, cfg, now_ms, store.commit_counters, wall_ms, peers)
    hook.target = app[SERVICE].committed
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, cfg.host, cfg.port, backlog=1024, reuse_address=True)
        await site.start()
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", cfg.host, cfg.port, exc)
        await runner.cleanup()
        await store.close()
        return 1
    log.info(
        "node %s serving on %s (epoch %s, last version %d, db %s)",
        cfg.name,
        cfg.url,
        store.epoch,
        store.last_version(),
        db_path,
    )
    await until_stopped()
    log.info("node %s stopping: finishing pending requests", cfg.name)
    await runner.cleanup()
    await store.close()
    log.info("node %s stopped at version %d", cfg.name, store.last_version())
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dtm node", description="Run one data node.")
    parser.add_argument("--config", required=True, help="the cluster TOML file")
    parser.add_argument("--name", required=True, help="this node's name in the config")
    args = parser.parse_args(argv)
    configure_logging(f"node {args.name}")
    try:
        cluster = load_config(args.config)
        cfg = cluster.node_named(args.name)
        data_dir = cluster.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        return uvloop.run(serve(cfg, data_dir / f"{cfg.name}.db", peers_of(cluster, cfg.name)))
    except DtmError as err:
        log.error("%s: %s", err.name, err.message)
        return err.exit_code
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
