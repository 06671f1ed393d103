"""`dtm sync`: run the sync process, or remove a node from the cluster for good.

    dtm sync --config FILE [--interval MS] [--state PATH] [--port PORT]
    dtm sync forget --config FILE [--state PATH] NODE

Rule: configuration and logging are set up here and nowhere else. Without ``--interval`` the
process long-polls every node's feed (the ``[sync]`` mode of the config decides, long-poll by
default); with it, it polls every node every MS milliseconds. ``forget`` asks the running sync
process (or, if none answers, edits its state file) to drop NODE: no more syncing to or from it,
and it no longer holds tombstone purges back.
"""

from __future__ import annotations

import argparse
import logging
import sys
import urllib.error
import urllib.request
from pathlib import Path

import msgspec
import uvloop
from aiohttp import web

from dtm import wire
from dtm.config import ClusterConfig, SyncConfig, load_config
from dtm.core.syncstate import SyncEngine
from dtm.edge import configure_logging, until_stopped
from dtm.errors import DtmError, ErrSyntaxInvalidArgs
from dtm.sync import statefile
from dtm.sync.app import make_app
from dtm.sync.client import NodeClient
from dtm.sync.service import SyncService

log = logging.getLogger("dtm.sync")


def default_state_path(cluster: ClusterConfig) -> Path:
    return cluster.data_dir / "sync.state.json"


async def serve(cluster: ClusterConfig, cfg: SyncConfig, state_path: Path) -> int:
    # A batch lands at most ~4 call timeouts after its rows were read (look, replicate, and a
    # read-ahead page waiting for the previous delivery): only then may a decided purge go out.
    fence_ms = 4 * cfg.call_timeout_ms
    engine = SyncEngine([n.name for n in cluster.node], purge_fence_ms=fence_ms)
    engine.restore(statefile.load(state_path))
    urls = {n.name: n.url for n in cluster.node}
    async with NodeClient(urls, cfg.call_timeout_ms / 1000.0) as client:
        svc = SyncService(cluster, cfg, state_path, engine, client)
        runner = web.AppRunner(make_app(svc), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, cfg.host, cfg.port, reuse_address=True).start()
        except OSError as exc:
            log.error("cannot listen on %s:%d: %s", cfg.host, cfg.port, exc)
            await runner.cleanup()
            return 1
        svc.start()
        log.info(
            "sync serving on %s (%s mode, nodes %s, state %s, %d cursors loaded)",
            cfg.url,
            cfg.mode,
            ",".join(urls),
            state_path,
            len(engine.cursors),
        )
        await until_stopped()
        log.info("sync stopping")
        await svc.stop()
        await runner.cleanup()
    return 0


def forget(cluster: ClusterConfig, state_path: Path, node: str) -> int:
    cluster.node_named(node)
    body = wire.encode(wire.ForgetRequest(node))
    req = urllib.request.Request(
        cluster.sync.url + "/v1/forget",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
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
    statefile.save(state_path, wire.SyncStateFile(cursors, forgotten))
    print(f"{node} forgotten in {state_path} (the sync process was not running)")
    return 0


def main(argv: list[str]) -> int:
    args = list(argv)
    forgetting = bool(args) and args[0] == "forget"
    parser = argparse.ArgumentParser(
        prog="dtm sync forget" if forgetting else "dtm sync",
        description="Remove a node for good." if forgetting else "Run the sync process.",
    )
    parser.add_argument("--config", required=True, help="the cluster TOML file")
    parser.add_argument("--state", help="the cursor state file (default: DATA_DIR/sync.state.json)")
    if forgetting:
        parser.add_argument("node", help="the node to forget")
    else:
        parser.add_argument("--interval", type=int, metavar="MS", help="poll every MS ms")
        parser.add_argument("--port", type=int, help="serve status on this port instead")
    ns = parser.parse_args(args[1:] if forgetting else args)
    configure_logging("sync")
    try:
        cluster = load_config(ns.config)
        state_path = Path(ns.state) if ns.state else default_state_path(cluster)
        if forgetting:
            return forget(cluster, state_path, ns.node)
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
        return uvloop.run(serve(cluster, cfg, state_path))
    except DtmError as exc:
        print(f"{exc.name}: {exc.message}", file=sys.stderr)
        return exc.exit_code
