"""The sync process's Prometheus metrics, in a registry of its own.

Rule: labels are node names from the cluster config only (a bounded set); cursors and lags are
read from the engine when Prometheus scrapes, so they are never stale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dtm.core.syncstate import SyncEngine

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _EngineCollector(Collector):
    def __init__(self, engine: SyncEngine, now_ms: Callable[[], int]) -> None:
        self._engine = engine
        self._now_ms = now_ms

    def collect(self) -> Iterator[Metric]:
        eng = self._engine
        cursor = GaugeMetricFamily(
            "dtm_sync_cursor", "Source version the target has applied", labels=["source", "target"]
        )
        lag = GaugeMetricFamily(
            "dtm_sync_lag_versions",
            "Source versions the target has not applied yet",
            labels=["source", "target"],
        )
        lag_s = GaugeMetricFamily(
            "dtm_sync_lag_seconds",
            "Age of the oldest change the target has not applied yet",
            labels=["source", "target"],
        )
        now = self._now_ms()
        for s in eng.members:
            for t in eng.members:
                if s == t:
                    continue
                c, v, sec = eng.lag(s, t, now)
                cursor.add_metric([s, t], c)
                lag.add_metric([s, t], v)
                if sec is not None:
                    lag_s.add_metric([s, t], sec)
        yield cursor
        yield lag
        yield lag_s
        yield GaugeMetricFamily(
            "dtm_sync_tombstones_awaiting_purge",
            "Tombstones seen in feeds and not yet purged everywhere",
            len(eng.candidates),
        )


class SyncMetrics:
    def __init__(self, engine: SyncEngine, now_ms: Callable[[], int]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.rows = Counter(
            "dtm_sync_rows_sent", "Rows sent to targets", ["source", "target"], registry=r
        )
        self.batches = Counter(
            "dtm_sync_batches", "Batches acknowledged by targets", ["source", "target"], registry=r
        )
        self.applied = Counter(
            "dtm_sync_rows_applied", "Rows that won the merge at the target", ["target"], registry=r
        )
        self.pages = Counter("dtm_sync_pages", "Feed pages read", ["source"], registry=r)
        self.calls = Counter(
            "dtm_sync_work",
            "Work items performed (a replicate may include a look at the target's feed first)",
            ["call"],
            registry=r,
        )
        self.errors = Counter(
            "dtm_sync_errors", "Failed calls to data nodes", ["node", "call"], registry=r
        )
        self.conflicts = Counter("dtm_sync_conflicts", "Conflicts detected", registry=r)
        self.purged = Counter("dtm_sync_purged", "Tombstones purged (node answers)", registry=r)
        self.repaired = Counter(
            "dtm_sync_anti_entropy_repaired", "Rows repaired by anti-entropy", registry=r
        )
        self.ae_runs = Counter("dtm_sync_anti_entropy_runs", "Anti-entropy passes", registry=r)
        self.replicate_seconds = Histogram(
            "dtm_sync_replicate_seconds",
            "Latency of one replicate call",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=r,
        )
        r.register(_EngineCollector(engine, now_ms))

    def render(self) -> bytes:
        return generate_latest(self.registry)
