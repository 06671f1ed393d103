"""The request handler's HTTP API: routes, the one error middleware, bodies and sessions.

Rule: a task route first finds the request's user from its ``Authorization: Bearer <token>``
(else 401 ErrUnauthorized with ``WWW-Authenticate: Bearer``), then parses and checks its input,
calls `TaskService` for that user, and encodes a wire struct; every DtmError becomes
``{"error", "message"[, "candidates"]}`` with its own status in one middleware, which also answers
with the request's session token in ``X-Dtm-Session``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware

from dtm import wire
from dtm.errors import (
    ErrPayloadTooLarge,
    ErrSyntaxInvalidArgs,
)
from dtm.handler import listing
from dtm.handler.metrics import CONTENT_TYPE, HandlerMetrics
from dtm.handler.openapi import build_document
from dtm.handler.service import TaskService
from dtm.handler.session import Session, parse_token
from dtm.handler.upstream import Upstream
from dtm.handler.users import UserDirectory
from dtm.httpkit import error_middleware, json_response, route_of

log = logging.getLogger(__name__)

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_BODY = 16 * 1024
SESSION_KEY = "dtm_session"
UPSTREAM = web.AppKey("upstream", Upstream)


_json = json_response


def make_middleware(metrics: HandlerMetrics) -> Middleware:
    """The handler's single middleware: errors to JSON, the session header, metrics."""

    def after(request: web.Request, resp: web.StreamResponse, elapsed: float) -> None:
        session: Session | None = request.get(SESSION_KEY)
        if session is not None:
            resp.headers[wire.SESSION_HEADER] = session.header
        if resp.status == 401:
            resp.headers["WWW-Authenticate"] = "Bearer"
        metrics.answered(route_of(request), request.method, resp.status, elapsed)

    return error_middleware("handler", after, lambda _: metrics.started())


# ---------------------------------------------------------------- input


def _user(request: web.Request, directory: UserDirectory) -> str:
    """The user the request's token names (before anything else of the request is looked at)."""
    values = request.headers.getall("Authorization", [])
    return directory.user_of(values[0] if len(values) == 1 else None)


def _session(request: web.Request) -> Session:
    """The request's session, from its ``X-Dtm-Session`` header (checked)."""
    values = request.headers.getall(wire.SESSION_HEADER, [])
    if len(values) > 1:
        raise ErrSyntaxInvalidArgs(f"header {wire.SESSION_HEADER} given more than once")
    s = Session(parse_token(values[0] if values else None))
    request[SESSION_KEY] = s
    return s


def _node(request: web.Request) -> str | None:
    """The data node the request pins itself to with ``X-Dtm-Node`` (checked), or None."""
    values = request.headers.getall(wire.NODE_HEADER, [])
    if not values:
        return None
    if len(values) > 1 or not wire.is_node_name(values[0]):
        raise ErrSyntaxInvalidArgs(f"header {wire.NODE_HEADER} must be one node name")
    return values[0]


def _no_query(request: web.Request) -> None:
    if request.query:
        names = ", ".join(sorted(set(request.query)))
        raise ErrSyntaxInvalidArgs(f"unexpected query parameter(s): {names}")


async def _body(request: web.Request, type_: type[T]) -> T:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ErrPayloadTooLarge(
            f"the body is {request.content_length} bytes; the limit is {MAX_BODY}"
        )
    try:
        data = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ErrPayloadTooLarge(f"the body is over the {MAX_BODY}-byte limit") from None
    return wire.decode(data, type_, limit=MAX_BODY)


# ---------------------------------------------------------------- routes


class Routes:
    """The route handlers, bound to one service."""

    def __init__(
        self, service: TaskService, metrics: HandlerMetrics, name: str, users: UserDirectory
    ) -> None:
        self.service = service
        self.metrics = metrics
        self.name = name
        self.users = users
        self._openapi: bytes | None = None

    async def create(self, request: web.Request) -> web.Response:
        user = _user(request, self.users)
        _no_query(request)
        s = _session(request)
        node = _node(request)
        body = await _body(request, wire.CreateTask)
        return _json(await self.service.create(user, body, s, node), 201)

    async def list(self, request: web.Request) -> web.StreamResponse:
        user = _user(request, self.users)
        after, limit = listing.parse_query(request)
        s = _session(request)
        node = _node(request)
        return await listing.answer(request, self.service, user, after, limit, s, node)

    async def get(self, request: web.Request) -> web.Response:
        user = _user(request, self.users)
        _no_query(request)
        s = _session(request)
        return _json(await self.service.get(user, request.match_info["ref"], s, _node(request)))

    async def update(self, request: web.Request) -> web.Response:
        user = _user(request, self.users)
        _no_query(request)
        s = _session(request)
        node = _node(request)
        body = await _body(request, wire.UpdateTask)
        return _json(await self.service.update(user, request.match_info["ref"], body, s, node))

    async def delete(self, request: web.Request) -> web.Response:
        user = _user(request, self.users)
        _no_query(request)
        s = _session(request)
        return _json(await self.service.delete(user, request.match_info["ref"], s, _node(request)))

    async def health(self, request: web.Request) -> web.Response:
        return _json(wire.Health("ok", "handler", self.name, now_ms=self.service.now_ms()))

    async def status(self, request: web.Request) -> web.Response:
        return _json(self.metrics.status())

    async def metrics_page(self, request: web.Request) -> web.Response:
        resp = web.Response(body=self.metrics.render())
        resp.headers["Content-Type"] = CONTENT_TYPE
        return resp

    async def openapi(self, request: web.Request) -> web.Response:
        if self._openapi is None:
            self._openapi = wire.encode(build_document(f"http://{self.name}"))
        return web.Response(body=self._openapi, content_type="application/json")


def make_app(
    upstream: Upstream,
    service: TaskService,
    metrics: HandlerMetrics,
    name: str,
    users: UserDirectory,
) -> web.Application:
    """The handler's aiohttp application; ``upstream`` is started and closed with it; ``users``
    says whose token a task request carries."""
    app = web.Application(middlewares=[make_middleware(metrics)], client_max_size=MAX_BODY)
    app[UPSTREAM] = upstream
    r = Routes(service, metrics, name, users)
    app.router.add_post("/v1/tasks", r.create)
    app.router.add_get("/v1/tasks", r.list, allow_head=False)
    app.router.add_get("/v1/tasks/{ref}", r.get, allow_head=False)
    app.router.add_patch("/v1/tasks/{ref}", r.update)
    app.router.add_delete("/v1/tasks/{ref}", r.delete)
    app.router.add_get("/healthz", r.health)
    app.router.add_get("/v1/status", r.status)
    app.router.add_get("/metrics", r.metrics_page)
    app.router.add_get("/openapi.json", r.openapi)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await app[UPSTREAM].start()
        yield
        await app[UPSTREAM].close()

    app.cleanup_ctx.append(lifecycle)
    return app
