"""`dtm node --config FILE --name NAME`: run one data node in the foreground
(`dtm node backup|restore ...`: copy its database out, or back in: dtm.node.backup).

Rule: the shared edge (dtm.edge) reads the config and the credential and serves; this module opens
the store (its files private) and builds the app. On SIGTERM or SIGINT the node stops accepting,
lets pending requests (and so pending writes) finish, and closes its store.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from dtm import edge
from dtm.node.app import NodeService
from dtm.node.clockwatch import peers_of
from dtm.node.routes import make_site
from dtm.storage.sqlite import SqliteStore

log = logging.getLogger("dtm.node")

DB_SUFFIXES = ("", "-wal", "-shm")


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


def private_db_files(db_path: Path) -> None:
    """Make an existing database (and its -wal/-shm files) readable by its owner only."""
    for suffix in DB_SUFFIXES:
        p = db_path.with_name(db_path.name + suffix)
        if p.exists():
            os.chmod(p, 0o600)


def _flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True, help="this node's name in the config")


def _listen(start: edge.Startup, ns: argparse.Namespace) -> edge.Listen:
    cfg = start.cluster.node_named(ns.name)
    return edge.Listen(cfg.bind_host, cfg.port, cfg.head_timeout_ms, cfg.max_connections)


@asynccontextmanager
async def _build(
    start: edge.Startup, ns: argparse.Namespace, where: edge.Listen
) -> AsyncIterator[edge.Served]:
    cfg = start.cluster.node_named(ns.name)
    edge.private_dir(start.cluster.data_dir)
    db_path = start.cluster.data_dir / f"{cfg.name}.db"
    private_db_files(db_path)
    offset = cfg.clock_offset_ms

    def now_ms() -> int:
        return time.time_ns() // 1_000_000 + offset

    def wall_ms() -> int:  # the machine's clock, without the test-only offset
        return time.time_ns() // 1_000_000

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
    try:
        peers = peers_of(start.cluster, cfg.name)
        svc = NodeService(
            store, cfg, now_ms, store.commit_counters, wall_ms, peers, start.client_ssl()
        )
        site = make_site(svc)
        hook.target = svc.committed
        svc.start()

        def banner() -> str:
            return (
                f"node {cfg.name} serving on {where.url} (epoch {store.epoch}, "
                f"last version {store.last_version()}, db {db_path})"
            )

        try:
            yield edge.Served(site, banner, stopping=svc.stop)
        finally:
            await svc.stop()
    finally:
        await store.close()
        log.info("node %s stopped at version %d", cfg.name, store.last_version())


NODE = edge.Component(
    prog="dtm node",
    description="Run one data node.",
    label=lambda ns: f"node {ns.name}",
    name=lambda ns: str(ns.name),
    listen=_listen,
    build=_build,
    flags=_flags,
)


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("backup", "restore"):
        from dtm.node.backup import main as backup_main

        return backup_main(argv)
    return edge.run(NODE, argv)
