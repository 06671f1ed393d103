"""The one place a DtmError becomes an HTTP answer, for every aiohttp service (node, handler,
sync); the balancer, which forwards raw bytes, encodes the same `wire.error_body`.

Rule: a DtmError becomes its own ``http_status`` with ``{"error", "message"[, "candidates"]}``;
aiohttp's own refusals (unknown path 404, wrong method 405, body too large 413) take the same JSON
shape; any other exception is a bug: logged with its traceback and answered 500 ErrInternal.
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
    ErrPayloadTooLarge,
    ErrSyntaxInvalidArgs,
    from_status,
)

log = logging.getLogger("dtm.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Called with every answer before it is sent, and how long it took (headers, metrics).
After = Callable[[web.Request, web.StreamResponse, float], None]


def json_response(msg: object, status: int = 200) -> web.Response:
    """A wire struct as a JSON answer."""
    return web.Response(status=status, body=wire.encode(msg), content_type="application/json")


def error_response(err: DtmError, status: int | None = None) -> web.Response:
    """The JSON answer for one of our errors."""
    return json_response(wire.error_body(err), status or err.http_status)


def from_http(exc: web.HTTPException, request: web.Request) -> web.Response:
    """aiohttp's own refusals, in our JSON shape."""
    if exc.status == 404:
        return error_response(ErrNoDataFound(f"no such path: {request.method} {request.path}"))
    if exc.status == 405:
        allowed = exc.headers.get("Allow", "")
        msg = f"method {request.method} not allowed here (allowed: {allowed})"
        resp = error_response(ErrSyntaxInvalidArgs(msg), 405)
        if allowed:
            resp.headers["Allow"] = allowed
        return resp
    if exc.status == 413:
        return error_response(ErrPayloadTooLarge(f"the body is over the limit: {exc.text}"))
    return error_response(from_status(exc.status, exc.text or exc.reason), exc.status)


def route_of(request: web.Request) -> str:
    """The route template that matched (a bounded metrics label), or "unmatched"."""
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"


def error_middleware(
    component: str, after: After, before: Callable[[web.Request], None] | None = None
) -> Middleware:
    """A service's single middleware: ``before`` each request; every error to JSON; then
    ``after`` on every answer."""

    @web.middleware
    async def mw(request: web.Request, handler: Handler) -> web.StreamResponse:
        if before is not None:
            before(request)
        start = time.perf_counter()
        resp: web.StreamResponse
        try:
            resp = await handler(request)
        except DtmError as err:
            resp = error_response(err)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            resp = from_http(exc, request)
        except Exception:
            log.exception("internal error answering %s %s", request.method, request.path)
            resp = error_response(ErrInternal(f"internal error; see the {component}'s log"))
        after(request, resp, time.perf_counter() - start)
        return resp

    return mw
