"""The request handler's counters: Prometheus metrics in a registry of its own, and the plain
counts its status page shows.

Rule: request metrics are labelled by route template (never by raw path), method and status, so
their number stays small whatever clients send.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from dtm import wire

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class HandlerMetrics:
    """Every metric of one request handler process."""

    def __init__(self, balancer_url: str) -> None:
        self.balancer_url = balancer_url
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "dtm_handler_requests", "Requests answered", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "dtm_handler_request_seconds",
            "Time to answer a request",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight_gauge = Gauge("dtm_handler_in_flight", "Requests being answered", registry=r)
        self.upstream = Counter(
            "dtm_handler_upstream_requests",
            "Requests sent to the load balancer, by outcome",
            ["method", "outcome"],
            registry=r,
        )
        self.upstream_latency = Histogram(
            "dtm_handler_upstream_seconds",
            "Time the load balancer took to answer",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.catch_up = Counter(
            "dtm_handler_catch_up_retries",
            "Reads repeated with a wait because no node had caught up with the session",
            registry=r,
        )
        self.stale = Counter(
            "dtm_handler_not_caught_up",
            "Reads answered ErrNotCaughtUp after the wait",
            registry=r,
        )
        self.invalid = Counter(
            "dtm_handler_invalid_rows", "Rows skipped because their value is not a task", registry=r
        )
        # Label children, looked up once (label sets stay few: route templates, methods).
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._upstream_children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        # Plain counts for /v1/status.
        self.n_requests = 0
        self.n_failed = 0
        self.n_in_flight = 0
        self.n_upstream = 0
        self.n_catch_up = 0
        self.n_stale = 0
        self.n_invalid = 0

    # ------------------------------------------------------------ events

    def started(self) -> None:
        self.n_in_flight += 1
        self.in_flight_gauge.inc()

    def answered(self, route: str, method: str, status: int, seconds: float) -> None:
        self.n_in_flight -= 1
        self.in_flight_gauge.dec()
        self.n_requests += 1
        if status >= 400:
            self.n_failed += 1
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def upstream_answered(self, method: str, outcome: str, seconds: float) -> None:
        self.n_upstream += 1
        key = (method, outcome)
        children = self._upstream_children.get(key)
        if children is None:
            children = (self.upstream.labels(method, outcome), self.upstream_latency.labels(method))
            self._upstream_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def catch_up_retry(self) -> None:
        self.n_catch_up += 1
        self.catch_up.inc()

    def not_caught_up(self) -> None:
        self.n_stale += 1
        self.stale.inc()

    def invalid_row(self) -> None:
        self.n_invalid += 1
        self.invalid.inc()

    # ------------------------------------------------------------ pages

    def status(self) -> wire.HandlerStatus:
        return wire.HandlerStatus(
            component="handler",
            balancer=self.balancer_url,
            requests=self.n_requests,
            in_flight=self.n_in_flight,
            failed=self.n_failed,
            upstream_requests=self.n_upstream,
            catch_up_retries=self.n_catch_up,
            not_caught_up=self.n_stale,
            invalid_rows=self.n_invalid,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
