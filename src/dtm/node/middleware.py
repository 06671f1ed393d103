"""The one place where the data node turns errors into HTTP answers, and times every request.

Rule: a DtmError becomes its own status with ``{"error", "message"}``; aiohttp's routing errors
(unknown path 404, wrong method 405, body too large 413) become the same JSON shape; anything else
is a bug: logged with its traceback and answered 500 ErrInternal, never a crash.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from dtm import wire
from dtm.errors import (
    DtmError,
    ErrInternal,
    ErrNoDataFound,
    ErrSyntaxInvalidArgs,
    from_status,
)
from dtm.node.metrics import NodeMetrics

log = logging.getLogger(__name__)

METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Finisher = Callable[[web.Request, web.StreamResponse], None]


def error_response(err: DtmError, status: int | None = None) -> web.Response:
    """The JSON answer for one of our errors."""
    body = wire.encode(wire.ErrorBody(err.name, err.message))
    return web.Response(
        status=status or err.http_status, body=body, content_type="application/json"
    )


def _from_http(exc: web.HTTPException, request: web.Request) -> web.Response:
    """aiohttp's own refusals, in our JSON shape."""
    if exc.status == 404:
        return error_response(ErrNoDataFound(f"no such path: {request.method} {request.path}"))
    if exc.status == 405:
        allowed = exc.headers.get("Allow", "")
        resp = error_response(
            ErrSyntaxInvalidArgs(f"method {request.method} not allowed (allowed: {allowed})"),
            405,
        )
        if allowed:
            resp.headers["Allow"] = allowed
        return resp
    err = from_status(exc.status, exc.text or exc.reason)
    return error_response(err, exc.status if exc.status >= 400 else None)


def route_of(request: web.Request) -> str:
    """The route template that matched (a bounded label), or "unmatched"."""
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"


def make_middleware(metrics: NodeMetrics, finish: Finisher) -> Middleware:
    """The node's single middleware; ``finish`` adds per-route headers to every answer."""

    @web.middleware
    async def mw(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        resp: web.StreamResponse
        try:
            resp = await handler(request)
        except DtmError as err:
            resp = error_response(err)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            resp = _from_http(exc, request)
        except Exception:
            log.exception("internal error answering %s %s", request.method, request.path)
            resp = error_response(ErrInternal("internal error; see the node's log"))
        finish(request, resp)
        method = request.method if request.method in METHODS else "other"
        metrics.observe(route_of(request), method, resp.status, time.perf_counter() - start)
        return resp

    return mw
