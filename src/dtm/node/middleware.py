"""The data node's one middleware: errors become JSON answers (by `dtm.httpkit`), every answer
gets its session header, and every request is timed.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from dtm.httpkit import error_middleware, route_of
from dtm.node.metrics import NodeMetrics

METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"})
Finisher = Callable[[web.Request, web.StreamResponse], None]


def make_middleware(metrics: NodeMetrics, finish: Finisher) -> Middleware:
    """The node's single middleware; ``finish`` adds per-route headers to every answer."""

    def after(request: web.Request, resp: web.StreamResponse, elapsed: float) -> None:
        finish(request, resp)
        method = request.method if request.method in METHODS else "other"
        metrics.observe(route_of(request), method, resp.status, elapsed)

    return error_middleware("node", after)
