"""A write the balancer gave up on (and retried elsewhere) must never apply late.

A SIGSTOPped node still accepts TCP connections: the balancer's PUT sits in its socket buffer,
times out, and succeeds on the other node. When the node is resumed it reads that PUT; applying
it then would stamp a stale duplicate *after* newer writes of the key (a lost update). The
balancer sends an X-Dtm-Deadline with every write and the node refuses what arrives past it.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest

from dtm.core.deadline import too_late
from harness import LocalCluster, request, wait_until


def test_the_deadline_rule() -> None:
    assert not too_late(0, 10**13, 0)  # no deadline: never late
    assert not too_late(1_000, 1_100, 100)
    assert too_late(1_000, 1_101, 100)


def _late_writes(url: str) -> float:
    for line in request("GET", f"{url}/metrics").body.decode().splitlines():
        if line.startswith("dtm_node_late_writes_total "):
            return float(line.split()[1])
    return 0.0


def test_a_node_refuses_a_write_past_its_deadline(cluster: Callable[..., LocalCluster]) -> None:
    c = cluster(nodes=1, node_options={"store1": {"max_clock_offset_ms": 100}})
    c.start("store1")
    url = c.url("store1")
    past = str(time.time_ns() // 1_000_000 - 5_000)
    r = request("PUT", f"{url}/v1/kv/k", {"value": 1}, headers={"X-Dtm-Deadline": past})
    assert r.status == 504 and r.json()["error"] == "ErrTimeout", r
    r = request("DELETE", f"{url}/v1/kv/k", headers={"X-Dtm-Deadline": past})
    assert r.status == 504, r
    assert request("GET", f"{url}/v1/kv/k").status == 404
    assert request("GET", f"{url}/v1/status").json()["last_version"] == 0
    future = str(time.time_ns() // 1_000_000 + 60_000)
    r = request("PUT", f"{url}/v1/kv/k", {"value": 1}, headers={"X-Dtm-Deadline": future})
    assert r.status == 200, r
    bad = request("PUT", f"{url}/v1/kv/k", {"value": 1}, headers={"X-Dtm-Deadline": "soon"})
    assert bad.status == 400


@pytest.mark.timeout(60)
def test_a_write_retried_elsewhere_is_not_applied_late_by_a_resumed_node(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(
        nodes=2,
        sections={
            "balancer": {
                "health_interval_ms": 5000,  # keep the stopped node in rotation for a while
                "connect_timeout_ms": 300,
                "read_timeout_ms": 300,
            }
        },
        node_options={n: {"max_clock_offset_ms": 50} for n in ("store1", "store2")},
    )
    c.start_nodes()
    c.start("balancer")
    lb, s1 = c.url("balancer"), c.url("store1")
    c.procs["store1"].signal(signal.SIGSTOP)
    try:
        acked = []
        for i in range(4):  # round-robin: some of these are tried on store1 first
            r = request("PUT", f"{lb}/v1/kv/k{i}", {"value": i}, timeout=10)
            assert r.status == 200, r
            acked.append(r.json())
        assert all(row["origin"] == "store2" for row in acked)
        time.sleep(0.2)  # let the deadlines of the requests parked in store1's buffer pass
    finally:
        c.procs["store1"].signal(signal.SIGCONT)
    wait_until(lambda: _late_writes(s1) >= 1, 10, 0.05, "store1 to refuse the parked write")
    for i in range(4):
        assert request("GET", f"{s1}/v1/kv/k{i}").status == 404
    assert request("GET", f"{s1}/v1/status").json()["last_version"] == 0


def test_a_late_replicate_or_purge_is_refused_too(cluster: Callable[..., LocalCluster]) -> None:
    """The sync process sends a deadline with each write call: a batch that timed out (and so
    counts as not delivered) must not be applied when the node gets to it later."""
    c = cluster(nodes=2, node_options={"store1": {"max_clock_offset_ms": 100}})
    c.start("store1")
    url = c.url("store1")
    row = {"key": "k", "value": 1, "deleted": False, "version": 1, "hlc": 5, "origin": "store2"}
    batch = {"source": "store2", "epoch": "e2e2e2e2e2e2e2e2", "source_version": 1, "rows": [row]}
    past = {"X-Dtm-Deadline": str(time.time_ns() // 1_000_000 - 5_000)}
    r = request("POST", f"{url}/v1/replicate", batch, headers=past)
    assert r.status == 504 and r.json()["error"] == "ErrTimeout", r
    assert request("GET", f"{url}/v1/kv/k").status == 404
    assert request("GET", f"{url}/v1/status").json()["applied"] == {}
    purge = {"rows": [{"key": "k", "hlc": 5, "origin": "store2"}]}
    assert request("POST", f"{url}/v1/purge", purge, headers=past).status == 504
    assert request("POST", f"{url}/v1/replicate", batch).json()["applied"] == 1
