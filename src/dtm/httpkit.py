"""The one place a DtmError becomes an HTTP answer, for every aiohttp service (the sync, the
viewer); the balancer, the data node and the handler, which write their answers as bytes
(`dtm.site`), encode the same `wire.error_body` with the same status (`DtmError.http_status`).

Rule: a DtmError becomes its own ``http_status`` with ``{"error", "message"[, "candidates"]}``;
aiohttp's own refusals (unknown path 404, wrong method 405, body too large 413) take the same JSON
shape; any other exception is a bug: answered 500 ErrInternal and logged with its traceback at
most once per `TRACEBACK_EVERY_S` per place (one line otherwise). Untrusted values go into log
lines through `quoted`, so no value can forge a line.
"""

from __future__ import annotations

import json
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
    ErrRequestTimeout,
    ErrSyntaxInvalidArgs,
    from_status,
)

log = logging.getLogger("dtm.http")

TRACEBACK_EVERY_S = 60.0
_last_traceback: dict[str, float] = {}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Called with every answer before it is sent, and how long it took (headers, metrics).
After = Callable[[web.Request, web.StreamResponse, float], None]


def quoted(value: object) -> str:
    """An untrusted value for a log line: JSON-quoted, so control characters and newlines are
    escaped and the value cannot end the line or pose as another field."""
    return json.dumps(value if isinstance(value, str) else str(value))


def log_unexpected(place: str, msg: str, *args: object, exc: BaseException | None = None) -> None:
    """Log an unexpected error: with its traceback at most once per TRACEBACK_EVERY_S for
    ``place``, else as one line (a flood of one bug must not flood the log)."""
    now = time.monotonic()
    last = _last_traceback.get(place)
    if last is None or now - last >= TRACEBACK_EVERY_S:
        _last_traceback[place] = now
        log.error(msg, *args, exc_info=exc if exc is not None else True)
        return
    detail = f"{type(exc).__name__}: {exc}" if exc is not None else "see the earlier traceback"
    log.error(
        msg + " (%s; traceback shown at most every %.0f s)",
        *args,
        quoted(detail)[:300],
        TRACEBACK_EVERY_S,
    )


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
        start = time.perf_counter()
        resp: web.StreamResponse
        try:
            if before is not None:
                before(request)
            resp = await handler(request)
        except DtmError as err:
            resp = error_response(err)
            if isinstance(err, ErrRequestTimeout):  # the rest of the body may never come
                resp.force_close()
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            resp = from_http(exc, request)
        except Exception as exc:
            place = f"{component} {route_of(request)}"
            log_unexpected(
                place,
                "internal error answering %s %s",
                request.method,
                quoted(request.path),
                exc=exc,
            )
            resp = error_response(ErrInternal(f"internal error; see the {component}'s log"))
        after(request, resp, time.perf_counter() - start)
        return resp

    return mw
