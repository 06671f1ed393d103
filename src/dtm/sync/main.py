"""`dtm sync`: run the sync process, or remove a node from the cluster for good.

    dtm sync --config FILE [--interval MS] [--state PATH] [--port PORT]
    dtm sync forget --config FILE [--state PATH] NODE

Rule: the shared edge (dtm.edge) reads the config and the credential and serves; this module
builds the engine, the node client and the app. Without ``--interval`` the process long-polls
every node's feed (the ``[sync]`` mode of the config decides, long-poll by default); with it, it
polls every node every MS milliseconds. ``forget`` asks the running sync process (or, if none
answers, edits its state file) to drop NODE: no more syncing to or from it, and it no longer
holds tombstone purges back.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec

from dtm import edge, wire
from dtm.config import PURGE_FENCE_CALLS, ClusterConfig, SyncConfig, add_config_flag
from dtm.core import crashpoint
from dtm.core.syncstate import RECENT_KEYS, SyncEngine
from dtm.errors import ErrSyntaxInvalidArgs
from dtm.sync import statefile
from dtm.sync.app import make_app
from dtm.sync.client import NodeClient
from dtm.sync.conflictlog import ConflictStore
from dtm.sync.service import SyncService

log = logging.getLogger("dtm.sync")

CONFLICT_LOG = "sync.conflicts.db"  # beside the state file


def default_state_path(cluster: ClusterConfig) -> Path:
    return cluster.data_dir / "sync.state.json"


def state_path_of(cluster: ClusterConfig, ns: argparse.Namespace) -> Path:
    return Path(ns.state) if ns.state else default_state_path(cluster)


def sync_config(cluster: ClusterConfig, ns: argparse.Namespace) -> SyncConfig:
    """The [sync] section with the command line's overrides, checked."""
    cfg = cluster.sync
    if ns.interval is not None:
        if ns.interval <= 0:
            raise ErrSyntaxInvalidArgs("--interval must be a positive number of ms")
        cfg = msgspec.structs.replace(cfg, mode="interval", interval_ms=ns.interval)
    if ns.port is not None:
        cfg = msgspec.structs.replace(cfg, port=ns.port)
    if cfg.call_timeout_ms < 1:
        raise ErrSyntaxInvalidArgs("[sync] call_timeout_ms must be positive")
    if cfg.batch < 1 or cfg.batch > 10_000:
        raise ErrSyntaxInvalidArgs("[sync] batch must be in 1..10000")
    return cfg


def _flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", help="the cursor state file (default: DATA_DIR/sync.state.json)")
    parser.add_argument("--interval", type=int, metavar="MS", help="poll every MS ms")
    parser.add_argument("--port", type=int, help="serve status on this port instead")


def _listen(start: edge.Startup, ns: argparse.Namespace) -> edge.Listen:
    cfg = sync_config(start.cluster, ns)
    return edge.Listen(cfg.bind_host, cfg.port, cfg.head_timeout_ms, cfg.max_connections)


@asynccontextmanager
async def _build(
    start: edge.Startup, ns: argparse.Namespace, where: edge.Listen
) -> AsyncIterator[edge.Served]:
    cluster = start.cluster
    cfg = sync_config(cluster, ns)
    crash = crashpoint.parse(os.environ.get(crashpoint.ENV, ""))  # test harnesses only
    state_path = state_path_of(cluster, ns)
    edge.private_dir(state_path.parent)
    fence_ms = PURGE_FENCE_CALLS * cfg.call_timeout_ms  # (see dtm.config)
    # Every row of a whole page stays in the engine's memory of recent keys (conflicts, echoes).
    recent = max(RECENT_KEYS, cfg.batch)
    engine = SyncEngine([n.name for n in cluster.node], recent=recent, purge_fence_ms=fence_ms)
    engine.restore(statefile.load(state_path))
    urls = {n.name: n.url for n in cluster.node}
    timeout_s = cfg.call_timeout_ms / 1000.0
    conflicts = ConflictStore(state_path.parent / CONFLICT_LOG)
    try:
        async with NodeClient(urls, timeout_s, start.auth_headers, start.client_ssl()) as client:
            svc = SyncService(cluster, cfg, state_path, engine, client, conflicts, crash=crash)
            yield edge.Served(
                make_app(svc),
                _banner(where, cfg, urls, state_path, engine),
                listening=svc.start,
                stopping=svc.stop,
                shutdown_timeout_s=2.0,
            )
    finally:
        conflicts.close()


def _banner(
    where: edge.Listen, cfg: SyncConfig, urls: dict[str, str], state_path: Path, engine: SyncEngine
) -> Callable[[], str]:
    def banner() -> str:
        return (
            f"sync serving on {where.url} ({cfg.mode} mode, nodes {','.join(urls)}, "
            f"state {state_path}, {len(engine.cursors)} cursors loaded)"
        )

    return banner


SYNC = edge.Component(
    prog="dtm sync",
    description="Run the sync process.",
    label=lambda ns: "sync",
    listen=_listen,
    build=_build,
    flags=_flags,
    # Each page allocates a thousand rows and the memories keep tens of thousands, nearly none in
    # cycles: collected every 20,000 allocations, not 700 (a catch-up spent ~1 us a row there).
    gc_young_every=20_000,
)


def forget(start: edge.Startup, state_path: Path, node: str) -> int:
    cluster = start.cluster
    cluster.node_named(node)
    body = wire.encode(wire.ForgetRequest(node))
    req = urllib.request.Request(
        cluster.sync.url + "/v1/forget",
        data=body,
        headers={"Content-Type": "application/json", **start.auth_headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=5, context=start.client_ssl()) as resp:
            print(f"{node} forgotten by the running sync process: {resp.read().decode()}")
            return 0
    except urllib.error.HTTPError as exc:
        print(f"sync refused: {exc.read().decode(errors='replace')}", file=sys.stderr)
        return 1
    except OSError:
        pass  # not running: edit its state file
    state = statefile.load(state_path)
    forgotten = sorted({*state.forgotten, node})
    cursors = [c for c in state.cursors if node not in (c.source, c.target)]
    statefile.save_durably(state_path, wire.SyncStateFile(cursors, forgotten, state.purges))
    print(f"{node} forgotten in {state_path} (the sync process was not running)")
    return 0


def _forget_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dtm sync forget", description="Remove a node for good.")
    add_config_flag(parser)
    parser.add_argument("--state", help="the cursor state file (default: DATA_DIR/sync.state.json)")
    parser.add_argument("node", help="the node to forget")
    ns = parser.parse_args(argv)
    edge.configure_logging("sync")

    def start() -> int:
        startup = edge.prepare(ns.config)
        return forget(startup, state_path_of(startup.cluster, ns), ns.node)

    return edge.report(start)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "forget":
        return _forget_main(argv[1:])
    return edge.run(SYNC, argv)
