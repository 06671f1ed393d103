"""Asking a component whether it is healthy.

Rule: a component is healthy iff ``GET <url>/healthz`` answers 200 within the timeout with a
`wire.Health` body whose status is "ok" (and, for a data node, whose name is the node's own).
"""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

from dtm import wire
from dtm.cluster.layout import Component
from dtm.errors import DtmError

MAX_HEALTH_BODY = 64 * 1024


def probe(comp: Component, timeout: float = 1.0) -> tuple[bool, str]:
    """(healthy, a short reason) for one component."""
    parts = urlsplit(comp.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        body = resp.read(MAX_HEALTH_BODY)
    except (OSError, http.client.HTTPException) as exc:
        return False, f"no answer ({exc.__class__.__name__}: {exc})"
    finally:
        conn.close()
    if resp.status != 200:
        return False, f"HTTP {resp.status}"
    try:
        health = wire.decode(body, wire.Health, what="healthz body")
    except DtmError as exc:
        return False, f"bad healthz body: {exc}"
    if comp.kind == "node" and health.name != comp.name:
        return False, f"another node answers there ({health.name!r})"
    return True, "ok"
