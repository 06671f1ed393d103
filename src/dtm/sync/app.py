"""The sync process's own HTTP endpoints: health, status, the conflict log, metrics, forget.

Rule: every answer is a wire struct (or Prometheus text); every error is `{"error", "message"}`
with the status its `DtmError` names, mapped here and only here; bodies are capped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from dtm import wire
from dtm.errors import DtmError, ErrInternal, ErrNoDataFound, ErrSyntaxInvalidArgs, from_status
from dtm.sync.metrics import CONTENT_TYPE
from dtm.sync.service import SyncService

log = logging.getLogger("dtm.sync")

MAX_BODY = 4096
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(msg: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=wire.encode(msg), content_type="application/json")


def _error(err: DtmError, status: int | None = None) -> web.Response:
    return _json(wire.ErrorBody(err.name, err.message), status or err.http_status)


@web.middleware
async def errors_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DtmError as err:
        return _error(err)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 404:
            return _error(ErrNoDataFound(f"no such path: {request.method} {request.path}"))
        if exc.status == 405:
            return _error(ErrSyntaxInvalidArgs(f"method {request.method} not allowed"), 405)
        return _error(from_status(exc.status, exc.reason), exc.status)
    except Exception:
        log.exception("internal error answering %s %s", request.method, request.path)
        return _error(ErrInternal("internal error; see the sync process's log"))


def make_app(svc: SyncService) -> web.Application:
    """The status application of one sync process."""

    async def healthz(request: web.Request) -> web.Response:
        return _json(wire.Health("ok", "sync", f"{svc.cfg.host}:{svc.cfg.port}"))

    async def status(request: web.Request) -> web.Response:
        return _json(svc.status())

    async def conflicts(request: web.Request) -> web.Response:
        return _json(svc.conflicts())

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=svc.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def forget(request: web.Request) -> web.Response:
        body = await request.read()
        req = wire.decode(body, wire.ForgetRequest, limit=MAX_BODY, what="forget request")
        if req.node not in svc.engine.nodes:
            raise ErrNoDataFound(f"no node named {req.node!r} in the cluster config")
        svc.forget(req.node)
        return _json(wire.ForgetResponse(req.node, sorted(svc.engine.forgotten)))

    app = web.Application(middlewares=[errors_mw], client_max_size=MAX_BODY)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/v1/status", status)
    app.router.add_get("/v1/conflicts", conflicts)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/v1/forget", forget)
    return app
