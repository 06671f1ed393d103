"""Asking a component whether it is healthy.

Rule: a component is healthy iff ``GET /healthz`` at its address answers 200 within the timeout
with a `wire.Health` body whose status is "ok" (and, for a data node, whose name is the node's
own). `dtm cluster status` asks over the address the others dial; `dtm health` (the probe of
Docker, compose, Kubernetes and systemd) asks over the address the component listens on.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from dtm import wire
from dtm.cluster.layout import Component
from dtm.errors import DtmError

MAX_HEALTH_BODY = 64 * 1024


@dataclass(frozen=True)
class Target:
    """Where to ask: the address to connect to, and, with TLS, the name its certificate holds."""

    host: str
    port: int
    kind: str  # "node", "balancer", "handler", "sync" or "view"
    name: str
    tls: ssl.SSLContext | None = None
    server_name: str = ""


class _Connection(http.client.HTTPConnection):
    """An HTTP connection that, given a TLS context, checks the certificate for ``server_name``
    while connecting to another address (a probe from inside the container dials 127.0.0.1)."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._target = target

    def connect(self) -> None:
        super().connect()
        t = self._target
        if t.tls is not None:
            self.sock = t.tls.wrap_socket(self.sock, server_hostname=t.server_name or t.host)


def ask(target: Target, timeout: float = 1.0) -> tuple[bool, str]:
    """(healthy, a short reason) for the component at ``target``."""
    conn = _Connection(target, timeout)
    try:
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        body = resp.read(MAX_HEALTH_BODY)
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        return False, f"no answer ({exc.__class__.__name__}: {exc})"
    finally:
        conn.close()
    if resp.status != 200:
        return False, f"HTTP {resp.status}"
    try:
        health = wire.decode(body, wire.Health, what="healthz body")
    except DtmError as exc:
        return False, f"bad healthz body: {exc}"
    if target.kind == "node" and health.name != target.name:
        return False, f"another node answers there ({health.name!r})"
    return True, "ok"


def probe(comp: Component, timeout: float = 1.0) -> tuple[bool, str]:
    """(healthy, a short reason) for one component of a local cluster, over plain HTTP."""
    parts = urlsplit(comp.url)
    target = Target(parts.hostname or "127.0.0.1", parts.port or 80, comp.kind, comp.name)
    return ask(target, timeout)


def local_address(bind_host: str) -> str:
    """The address that reaches a listener bound to ``bind_host`` from the same machine."""
    if bind_host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if bind_host in ("::", "[::]"):
        return "::1"
    try:
        socket.inet_pton(socket.AF_INET6, bind_host.strip("[]"))
        return bind_host.strip("[]")
    except OSError:
        return bind_host
