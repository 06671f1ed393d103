"""The sync process's own HTTP endpoints: health, status, the conflict log, metrics, forget.

Rule: every answer is a wire struct (or Prometheus text); errors become JSON answers through
`dtm.httpkit`, the one mapping of every service; bodies are capped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from dtm import wire
from dtm.errors import ErrNoDataFound, ErrSyntaxInvalidArgs
from dtm.httpkit import error_middleware, json_response
from dtm.sync.metrics import CONTENT_TYPE
from dtm.sync.service import SyncService

log = logging.getLogger("dtm.sync")

MAX_BODY = 4096
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


_json = json_response


def make_app(svc: SyncService) -> web.Application:
    """The status application of one sync process."""

    async def healthz(request: web.Request) -> web.Response:
        return _json(wire.Health("ok", "sync", f"{svc.cfg.host}:{svc.cfg.port}", svc.now_ms()))

    async def status(request: web.Request) -> web.Response:
        return _json(svc.status())

    async def conflicts(request: web.Request) -> web.Response:
        raw = request.query.get("limit", str(DEFAULT_LIMIT))
        if not raw.isdigit() or not 0 <= int(raw) <= MAX_LIMIT:
            raise ErrSyntaxInvalidArgs(f"limit must be an integer in 0..{MAX_LIMIT}")
        return _json(svc.conflicts(int(raw)))

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=svc.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def forget(request: web.Request) -> web.Response:
        body = await request.read()
        req = wire.decode(body, wire.ForgetRequest, limit=MAX_BODY, what="forget request")
        if req.node not in svc.engine.nodes:
            raise ErrNoDataFound(f"no node named {req.node!r} in the cluster config")
        svc.forget(req.node)
        return _json(wire.ForgetResponse(req.node, sorted(svc.engine.forgotten)))

    app = web.Application(
        middlewares=[error_middleware("sync process", lambda *_: None)], client_max_size=MAX_BODY
    )
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/v1/status", status)
    app.router.add_get("/v1/conflicts", conflicts)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/v1/forget", forget)
    return app
