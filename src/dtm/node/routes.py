"""The data node's server: its route table over `NodeService` and its lean server (`dtm.site`).

Rule: every route of the node's API is listed here once, with its methods (a GET also answers
HEAD); the server's bounds come from the node's config.
"""

from __future__ import annotations

from dtm import wire
from dtm.node.app import PUT_OVERHEAD, NodeService
from dtm.node.openapi import build_document
from dtm.site import Answer, Handler, Limits, Request, Routes, Site

IDLE_TIMEOUT_MS = 60_000  # an idle keep-alive connection is closed after this


def routes(svc: NodeService, document: bytes) -> Routes:
    """The node's route table."""

    async def openapi(request: Request) -> Answer:
        return Answer(200, document)

    def get(handler: Handler) -> dict[str, Handler]:
        return {"GET": handler, "HEAD": handler}

    kv: dict[str, Handler] = get(svc.get) | {"PUT": svc.put, "DELETE": svc.delete}
    return Routes(
        exact={
            "/healthz": get(svc.healthz),
            "/metrics": get(svc.metrics_text),
            "/v1/status": get(svc.status),
            "/v1/kv": get(svc.scan),
            "/v1/changes": get(svc.feed),
            "/v1/replicate": {"POST": svc.replicate},
            "/v1/purge": {"POST": svc.purge},
            "/v1/digest": get(svc.digest),
            "/openapi.json": get(openapi),
        },
        prefixed=(
            ("/v1/kv/", "/v1/kv/{key}", kv),
            ("/v1/digest/", "/v1/digest/{bucket}", get(svc.bucket)),
        ),
    )


def make_site(svc: NodeService) -> Site:
    """The lean server of one data node over its handlers (the edge sets its guard)."""
    cfg = svc.cfg
    limits = Limits(
        head_timeout_ms=cfg.head_timeout_ms,
        max_connections=cfg.max_connections,
        max_body_bytes=cfg.max_batch_bytes + PUT_OVERHEAD,
        idle_timeout_ms=IDLE_TIMEOUT_MS,
    )
    table = routes(svc, wire.encode(build_document(cfg.url)))
    return Site("node", table, limits, svc.finish)
