"""The data node's Prometheus metrics, in a registry of its own (one per process).

Rule: request metrics are labelled by route template (never by raw path), method and status, so
their number stays small whatever clients send; store counters are read at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dtm.node.clockwatch import ClockWatch
from dtm.storage.base import Store
from dtm.storage.sqlite import CommitCounters

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _StoreCollector(Collector):
    """Counts the store keeps itself, read when Prometheus scrapes."""

    def __init__(
        self,
        store: Store,
        commits: Callable[[], CommitCounters] | None,
        clock: ClockWatch | None,
    ) -> None:
        self._store = store
        self._commits = commits
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        stats = self._store.stats()
        yield GaugeMetricFamily(
            "dtm_node_last_version", "Highest version committed", self._store.last_version()
        )
        yield GaugeMetricFamily("dtm_node_live_rows", "Live (not deleted) rows", stats.live_rows)
        yield GaugeMetricFamily("dtm_node_tombstones", "Tombstone rows", stats.tombstones)
        yield GaugeMetricFamily("dtm_node_hlc", "The hybrid logical clock's last stamp", stats.hlc)
        yield CounterMetricFamily(
            "dtm_node_skew_events",
            "Stamps refused (never merged nor stored) for being more than the max offset ahead",
            stats.skew_events,
        )
        if self._clock is not None:
            yield GaugeMetricFamily(
                "dtm_node_fenced",
                "1 while client writes are refused: the clock is beyond the max offset from peers",
                float(self._clock.fenced),
            )
            offsets = GaugeMetricFamily(
                "dtm_node_clock_offset_ms",
                "Last measured clock offset of each peer that answered (peer minus this node)",
                labels=["peer"],
            )
            for peer, off in sorted(self._clock.offsets.items()):
                offsets.add_metric([peer], off)
            yield offsets
        if self._commits is not None:
            c = self._commits()
            yield CounterMetricFamily(
                "dtm_node_commits", "Transactions committed by the store's writer", c.commits
            )
            yield CounterMetricFamily(
                "dtm_node_committed_ops", "Write operations in those transactions", c.ops
            )
            yield CounterMetricFamily(
                "dtm_node_failed_commits", "Groups whose transaction failed", c.failed_commits
            )


class NodeMetrics:
    """Every metric of one data node process."""

    def __init__(
        self,
        store: Store,
        waiters: Callable[[], int],
        commits: Callable[[], CommitCounters] | None = None,
        clock: ClockWatch | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # Labelled children by (route, method, status): a request pays one dict lookup.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.requests = Counter(
            "dtm_node_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dtm_node_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template, method and status",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.writes = Counter(
            "dtm_node_writes",
            "Rows changed or considered, by kind (put, delete, replicated, ignored, purged)",
            ["kind"],
            registry=self.registry,
        )
        self.group_size = Histogram(
            "dtm_node_commit_group_size",
            "Writes that shared one committed transaction (one fsync)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=self.registry,
        )
        self.late_writes = Counter(
            "dtm_node_late_writes",
            "Forwarded writes refused because they arrived after their deadline",
            registry=self.registry,
        )
        self.pages_not_modified = Counter(
            "dtm_node_pages_not_modified",
            "Scans answered 304: the caller's copy of the page (its ETag) is still current",
            registry=self.registry,
        )
        waiting = Gauge(
            "dtm_node_longpoll_waiters",
            "Requests parked waiting for a change (long-poll or session catch-up)",
            registry=self.registry,
        )
        waiting.set_function(lambda: float(waiters()))
        self.registry.register(_StoreCollector(store, commits, clock))

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            labels = (route, method, str(status))
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
