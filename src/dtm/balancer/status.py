"""The balancer's own answers: errors, `/healthz`, `/v1/status` and `/metrics`.

Errors are rendered here and only here: status from `DtmError.http_status`, body a
`wire.ErrorBody`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from http import HTTPStatus

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dtm.balancer.upstream import Node
from dtm.errors import DtmError, ErrUnavailable
from dtm.wire import BalancerStatus, Health, UpstreamStatus, encode, error_body

PROMETHEUS_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
JSON_TYPE = b"application/json"


class Counters:
    """Totals over all requests the balancer took from clients."""

    __slots__ = (
        "in_flight",
        "refused_buffers",
        "refused_connections",
        "request_timeouts",
        "requests",
        "unanswered",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.in_flight = 0
        self.unanswered = 0
        self.request_timeouts = 0  # 408: a head or body did not arrive in time
        self.refused_connections = 0  # 503: over max_connections
        self.refused_buffers = 0  # 503: over max_buffered_bytes


def response(
    status: int,
    body: bytes,
    keep_alive: bool,
    content_type: bytes = JSON_TYPE,
    head_only: bool = False,
    extra: bytes = b"",
) -> bytes:
    """A complete HTTP/1.1 answer with a Content-Length body."""
    try:
        reason = HTTPStatus(status).phrase.encode()
    except ValueError:
        reason = b""
    parts = [
        b"HTTP/1.1 %d %s\r\n" % (status, reason),
        b"Content-Type: " + content_type + b"\r\n",
        b"Content-Length: %d\r\n" % len(body),
        extra,
    ]
    if not keep_alive:
        parts.append(b"Connection: close\r\n")
    parts.append(b"\r\n")
    if not head_only:
        parts.append(body)
    return b"".join(parts)


def error_response(
    err: DtmError, keep_alive: bool, http_status: int | None = None, extra: bytes = b""
) -> bytes:
    """The answer for one of our errors (``http_status`` overrides the error's own)."""
    body = encode(error_body(err))
    return response(http_status or err.http_status, body, keep_alive, extra=extra)


def too_many_connections(who: str, limit: int) -> bytes:
    err = ErrUnavailable(f"the {who} holds its maximum of {limit} client connections")
    return error_response(err, keep_alive=False)


def buffers_full(who: str, limit: int) -> bytes:
    err = ErrUnavailable(f"the {who}'s request buffers are full ({limit} bytes); try again")
    return error_response(err, keep_alive=False)


def health_body(name: str, now_ms: int) -> bytes:
    """The balancer's /healthz: alive, and its clock (the nodes measure their offsets by it)."""
    return encode(Health(status="ok", component="balancer", name=name, now_ms=now_ms))


def status_of(nodes: Sequence[Node], totals: Counters) -> BalancerStatus:
    return BalancerStatus(
        component="balancer",
        requests=totals.requests,
        in_flight=totals.in_flight,
        unanswered=totals.unanswered,
        nodes=[
            UpstreamStatus(
                name=n.name,
                url=n.url,
                healthy=n.healthy,
                in_flight=n.in_flight,
                requests=n.requests,
                failures=n.failures,
                retries=n.retries,
                ejections=n.ejections,
                readmissions=n.readmissions,
                fenced=n.fenced,
                checks=n.checks,
                failed_checks=n.failed_checks_total,
            )
            for n in nodes
        ],
    )


class _BalancerCollector(Collector):
    """Reads the plain counters at scrape time, so the request path pays nothing for metrics."""

    def __init__(self, nodes: Sequence[Node], totals: Counters) -> None:
        self._nodes = nodes
        self._totals = totals

    def collect(self) -> Iterable[Metric]:
        t = self._totals
        yield CounterMetricFamily(
            "dtm_balancer_requests", "Requests taken from clients.", value=t.requests
        )
        yield CounterMetricFamily(
            "dtm_balancer_unanswered",
            "Requests no data node answered (the balancer's own 503/504).",
            value=t.unanswered,
        )
        yield GaugeMetricFamily(
            "dtm_balancer_in_flight", "Client requests being served.", value=t.in_flight
        )
        yield CounterMetricFamily(
            "dtm_balancer_request_timeouts",
            "Client connections answered 408: a head or body did not arrive in time.",
            value=t.request_timeouts,
        )
        yield CounterMetricFamily(
            "dtm_balancer_refused_connections",
            "Client connections refused over max_connections.",
            value=t.refused_connections,
        )
        yield CounterMetricFamily(
            "dtm_balancer_refused_buffers",
            "Requests refused because the global buffer cap was reached.",
            value=t.refused_buffers,
        )
        per_node: list[tuple[str, str, str, bool]] = [
            ("upstream_requests", "requests", "Attempts sent to a data node.", True),
            ("upstream_failures", "failures", "Attempts that got no usable answer.", True),
            ("upstream_retries", "retries", "Attempts that repeated a request.", True),
            ("upstream_ejections", "ejections", "Times a data node was ejected.", True),
            ("upstream_readmissions", "readmissions", "Times a node was readmitted.", True),
            ("upstream_checks", "checks", "Health checks made of a data node.", True),
            ("upstream_failed_checks", "failed_checks_total", "Health checks it failed.", True),
            ("upstream_in_flight", "in_flight", "Attempts waiting on a data node.", False),
            ("upstream_healthy", "healthy", "1 if the data node takes traffic.", False),
            ("upstream_fenced", "fenced", "1 if the node's clock fences client writes.", False),
        ]
        for metric, attr, doc, counter in per_node:
            family: CounterMetricFamily | GaugeMetricFamily
            if counter:
                family = CounterMetricFamily(f"dtm_balancer_{metric}", doc, labels=["node"])
            else:
                family = GaugeMetricFamily(f"dtm_balancer_{metric}", doc, labels=["node"])
            for n in self._nodes:
                family.add_metric([n.name], float(getattr(n, attr)))
            yield family


def make_registry(nodes: Sequence[Node], totals: Counters) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(_BalancerCollector(nodes, totals))
    ProcessCollector(registry=registry)
    return registry


def metrics_body(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
