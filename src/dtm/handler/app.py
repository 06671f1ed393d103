"""The request handler's HTTP API: routes, the after-hook, bodies and sessions.

Rule: a task route first finds the request's user from its ``Authorization: Bearer <token>``
(else 401 ErrUnauthorized with ``WWW-Authenticate: Bearer``), then parses and checks its input,
calls `TaskService` for that user, and encodes a wire struct; every DtmError becomes
``{"error", "message"[, "candidates"]}`` with its own status (`dtm.site`), and every answer
carries the request's session token in ``X-Dtm-Session``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from dtm import wire
from dtm.config import HandlerConfig
from dtm.errors import ErrPayloadTooLarge, ErrSyntaxInvalidArgs
from dtm.handler import listing
from dtm.handler.metrics import CONTENT_TYPE, HandlerMetrics
from dtm.handler.openapi import build_document
from dtm.handler.service import TaskService
from dtm.handler.session import Session, parse_token
from dtm.handler.users import UserDirectory
from dtm.site import Answer, Handler, Limits, Request, Site, json_answer
from dtm.site import Routes as Table

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BODY = 16 * 1024
IDLE_TIMEOUT_MS = 60_000  # an idle keep-alive connection is closed after this

_json = json_answer


def make_after(metrics: HandlerMetrics) -> Callable[[Request, Answer, str, float], None]:
    """What every answer gets before it is sent: the session header, metrics."""

    def after(request: Request, resp: Answer, route: str, elapsed: float) -> None:
        session: Session | None = request.state
        if session is not None:
            resp.headers[wire.SESSION_HEADER] = session.header
        if resp.status == 401:
            resp.headers["WWW-Authenticate"] = "Bearer"
        metrics.answered(route, request.method, resp.status, elapsed)

    return after


# ---------------------------------------------------------------- input


def _user(request: Request, directory: UserDirectory) -> str:
    """The user the request's token names (before anything else of the request is looked at)."""
    values = request.header_all("Authorization")
    return directory.user_of(values[0] if len(values) == 1 else None)


def _session(request: Request) -> Session:
    """The request's session, from its ``X-Dtm-Session`` header (checked)."""
    values = request.header_all(wire.SESSION_HEADER)
    if len(values) > 1:
        raise ErrSyntaxInvalidArgs(f"header {wire.SESSION_HEADER} given more than once")
    s = Session(parse_token(values[0] if values else None))
    request.state = s
    return s


def _node(request: Request) -> str | None:
    """The data node the request pins itself to with ``X-Dtm-Node`` (checked), or None."""
    values = request.header_all(wire.NODE_HEADER)
    if not values:
        return None
    if len(values) > 1 or not wire.is_node_name(values[0]):
        raise ErrSyntaxInvalidArgs(f"header {wire.NODE_HEADER} must be one node name")
    return values[0]


def _no_query(request: Request) -> None:
    q = request.query()
    if q:
        names = ", ".join(sorted({name for name, _ in q}))
        raise ErrSyntaxInvalidArgs(f"unexpected query parameter(s): {names}")


def _body(request: Request, type_: type[T]) -> T:
    if len(request.body) > MAX_BODY:
        raise ErrPayloadTooLarge(f"the body is {len(request.body)} bytes; the limit is {MAX_BODY}")
    return wire.decode(request.body, type_, limit=MAX_BODY)


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

    async def create(self, request: Request) -> Answer:
        user = _user(request, self.users)
        _no_query(request)
        s = _session(request)
        node = _node(request)
        body = _body(request, wire.CreateTask)
        return _json(await self.service.create(user, body, s, node), 201)

    async def list(self, request: Request) -> Answer:
        user = _user(request, self.users)
        after, limit = listing.parse_query(request.query())
        s = _session(request)
        node = _node(request)
        return await listing.answer(self.service, user, after, limit, s, node)

    async def get(self, request: Request) -> Answer:
        user = _user(request, self.users)
        _no_query(request)
        s = _session(request)
        return _json(await self.service.get(user, request.match, s, _node(request)))

    async def update(self, request: Request) -> Answer:
        user = _user(request, self.users)
        _no_query(request)
        s = _session(request)
        node = _node(request)
        body = _body(request, wire.UpdateTask)
        return _json(await self.service.update(user, request.match, body, s, node))

    async def delete(self, request: Request) -> Answer:
        user = _user(request, self.users)
        _no_query(request)
        s = _session(request)
        return _json(await self.service.delete(user, request.match, s, _node(request)))

    async def health(self, request: Request) -> Answer:
        return _json(wire.Health("ok", "handler", self.name, now_ms=self.service.now_ms()))

    async def status(self, request: Request) -> Answer:
        return _json(self.metrics.status())

    async def metrics_page(self, request: Request) -> Answer:
        return Answer(200, self.metrics.render(), CONTENT_TYPE.encode())

    async def openapi(self, request: Request) -> Answer:
        if self._openapi is None:
            self._openapi = wire.encode(build_document(f"http://{self.name}"))
        return Answer(200, self._openapi)

    def table(self) -> Table:
        def get(handler: Handler) -> dict[str, Handler]:
            return {"GET": handler, "HEAD": handler}

        task: dict[str, Handler] = {"GET": self.get, "PATCH": self.update, "DELETE": self.delete}
        return Table(
            exact={
                "/v1/tasks": {"POST": self.create, "GET": self.list},
                "/healthz": get(self.health),
                "/v1/status": get(self.status),
                "/metrics": get(self.metrics_page),
                "/openapi.json": get(self.openapi),
            },
            prefixed=(("/v1/tasks/", "/v1/tasks/{ref}", task),),
        )


def make_site(
    cfg: HandlerConfig,
    service: TaskService,
    metrics: HandlerMetrics,
    name: str,
    users: UserDirectory,
) -> Site:
    """The handler's server; ``users`` says whose token a task request carries (the edge sets
    its guard)."""
    limits = Limits(cfg.head_timeout_ms, cfg.max_connections, MAX_BODY, IDLE_TIMEOUT_MS)
    table = Routes(service, metrics, name, users).table()
    after = make_after(metrics)
    return Site("handler", table, limits, after, metrics.started)
