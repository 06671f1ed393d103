"""The request handler's counters: plain numbers on the request path, turned into Prometheus
metrics only when /metrics is read, and the counts its status page shows.

Rule: request metrics are labelled by route template (never by raw path), method and status, so
their number stays small whatever clients send; a request costs a dict update and a bisection,
never a Prometheus lock or a label lookup.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from dtm import wire

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BOUNDS = (*map(floatToGoString, LATENCY_BUCKETS), "+Inf")  # as prometheus_client writes them


class _Histogram:
    """Counts per latency bucket (the last one: over every bound) and the sum."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.sum += seconds

    def buckets(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        total = 0
        for bound, n in zip(
            (*map(floatToGoString, LATENCY_BUCKETS), "+Inf"), self.counts, strict=True
        ):
            total += n
            out.append((bound, total))
        return out


class HandlerMetrics:
    """Every metric of one request handler process."""

    def __init__(self, balancer_url: str) -> None:
        self.balancer_url = balancer_url
        self._requests: dict[tuple[str, str, int], int] = {}
        self._latency: dict[tuple[str, str], _Histogram] = {}
        self._upstream: dict[tuple[str, str], int] = {}
        self._upstream_latency: dict[str, _Histogram] = {}
        # Plain counts, for /v1/status and /metrics.
        self.n_requests = 0
        self.n_failed = 0
        self.n_in_flight = 0
        self.n_upstream = 0
        self.n_catch_up = 0
        self.n_stale = 0
        self.n_invalid = 0
        self.n_short_of_copies = 0
        self.n_pages_reused = 0
        self.n_pages_unasked = 0
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))

    # ------------------------------------------------------------ events

    def started(self) -> None:
        self.n_in_flight += 1

    def answered(self, route: str, method: str, status: int, seconds: float) -> None:
        self.n_in_flight -= 1
        self.n_requests += 1
        if status >= 400:
            self.n_failed += 1
        key = (route, method, status)
        counts = self._requests
        counts[key] = counts.get(key, 0) + 1
        hist = self._latency.get((route, method))
        if hist is None:
            hist = self._latency[(route, method)] = _Histogram()
        hist.observe(seconds)

    def upstream_answered(self, method: str, outcome: str, seconds: float) -> None:
        self.n_upstream += 1
        key = (method, outcome)
        counts = self._upstream
        counts[key] = counts.get(key, 0) + 1
        hist = self._upstream_latency.get(method)
        if hist is None:
            hist = self._upstream_latency[method] = _Histogram()
        hist.observe(seconds)

    def catch_up_retry(self) -> None:
        self.n_catch_up += 1

    def not_caught_up(self) -> None:
        self.n_stale += 1

    def invalid_row(self) -> None:
        self.n_invalid += 1

    def short_of_copies(self) -> None:
        self.n_short_of_copies += 1

    def page_reused(self) -> None:
        self.n_pages_reused += 1

    def page_unasked(self) -> None:
        self.n_pages_unasked += 1

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

    def families(self) -> Iterator[Metric]:
        """The metrics as Prometheus families, built from the counts as they stand."""
        requests = CounterMetricFamily(
            "dtm_handler_requests", "Requests answered", labels=["route", "method", "status"]
        )
        for (route, method, status), n in self._requests.items():
            requests.add_metric([route, method, str(status)], n)
        yield requests
        latency = HistogramMetricFamily(
            "dtm_handler_request_seconds", "Time to answer a request", labels=["route", "method"]
        )
        for (route, method), hist in self._latency.items():
            latency.add_metric([route, method], hist.buckets(), hist.sum)
        yield latency
        yield GaugeMetricFamily(
            "dtm_handler_in_flight", "Requests being answered", value=self.n_in_flight
        )
        upstream = CounterMetricFamily(
            "dtm_handler_upstream_requests",
            "Requests sent to the load balancer, by outcome",
            labels=["method", "outcome"],
        )
        for (method, outcome), n in self._upstream.items():
            upstream.add_metric([method, outcome], n)
        yield upstream
        up_latency = HistogramMetricFamily(
            "dtm_handler_upstream_seconds",
            "Time the load balancer took to answer",
            labels=["method"],
        )
        for method, hist in self._upstream_latency.items():
            up_latency.add_metric([method], hist.buckets(), hist.sum)
        yield up_latency
        for name, text, value in (
            (
                "dtm_handler_catch_up_retries",
                "Reads repeated with a wait because no node had caught up with the session",
                self.n_catch_up,
            ),
            (
                "dtm_handler_not_caught_up",
                "Reads answered ErrNotCaughtUp after the wait",
                self.n_stale,
            ),
            (
                "dtm_handler_invalid_rows",
                "Rows skipped because their value is not a task",
                self.n_invalid,
            ),
            (
                "dtm_handler_writes_short_of_copies",
                "Writes acknowledged with fewer copies than write_copies (the wait ran out)",
                self.n_short_of_copies,
            ),
            (
                "dtm_handler_pages_reused",
                "Node pages served from the handler's copy after a 304 (the node's ETag matched)",
                self.n_pages_reused,
            ),
            (
                "dtm_handler_pages_unasked",
                "Node pages served from the handler's copy without asking the node (the node's "
                "latest report vouched for it)",
                self.n_pages_unasked,
            ),
        ):
            yield CounterMetricFamily(name, text, value=value)


class _Collector:
    """What the registry reads on a scrape."""

    def __init__(self, metrics: HandlerMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics.families()
