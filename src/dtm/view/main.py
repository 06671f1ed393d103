"""`dtm view --config FILE`: the live view of a cluster in the browser, on the [view] address.

Rule: the shared edge reads the config and the credential and serves; this module starts the
poller (dtm.view.poller) once listening and stops it, and every open event stream, on SIGTERM.
The lever buttons work where the config lives in a run directory of `dtm cluster up` (its
supervisord socket beside the config file); elsewhere the view only watches.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from dtm import edge
from dtm.cluster.layout import RunDir
from dtm.errors import ErrSyntaxInvalidArgs
from dtm.view.app import make_app, needs_credential
from dtm.view.poller import Poller, supervisor_states

log = logging.getLogger("dtm.view")


def _listen(start: edge.Startup, ns: argparse.Namespace) -> edge.Listen:
    cfg = start.cluster.view
    if cfg is None:
        raise ErrSyntaxInvalidArgs("the cluster config has no [view] section: nothing to serve")
    return edge.Listen(cfg.host, cfg.port, cfg.head_timeout_ms, cfg.max_connections)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@asynccontextmanager
async def _build(
    start: edge.Startup, ns: argparse.Namespace, where: edge.Listen
) -> AsyncIterator[edge.Served]:
    cluster = start.cluster
    cfg = cluster.view
    assert cfg is not None  # _listen refused a config without it
    run = RunDir.at(Path(ns.config).resolve().parent)
    states = supervisor_states(run, sys.executable)
    poller = Poller(
        cluster, start.auth_headers, start.client_ssl(), states, cfg.max_events, _now_ms
    )
    task: asyncio.Task[None] | None = None

    def listening() -> None:
        nonlocal task
        task = asyncio.create_task(poller.run(cfg.poll_ms / 1000), name="poll")

    async def stopping() -> None:
        for q in list(poller.subscribers):  # end every event stream
            with contextlib.suppress(asyncio.QueueFull):
                q.put_nowait(None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def banner() -> str:
        levers = "with levers" if run.socket.exists() else "watch only (no supervisord here)"
        return f"live view serving on {where.url} ({levers}; polls every {cfg.poll_ms} ms)"

    yield edge.Served(
        make_app(cluster, poller, run, cfg.max_clients),
        banner,
        needs_credential=needs_credential,
        listening=listening,
        stopping=stopping,
        shutdown_timeout_s=2.0,
    )


VIEW = edge.Component(
    prog="dtm view",
    description="Serve the live view of the cluster in the browser.",
    label=lambda ns: "view",
    listen=_listen,
    build=_build,
)


def main(argv: list[str]) -> int:
    return edge.run(VIEW, argv)
