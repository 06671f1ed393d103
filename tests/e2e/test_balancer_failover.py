"""The balancer when a data node dies (SIGKILL) or hangs (SIGSTOP): no failed operation, no client
held beyond the timeout, and the node takes traffic again once it is back."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tests.harness import LocalCluster, Response, request, wait_until

from dtm import wire

SECTIONS = {
    "balancer": {
        "health_interval_ms": 100,
        "health_timeout_ms": 300,
        "connect_timeout_ms": 300,
        "read_timeout_ms": 400,
    }
}
READ_TIMEOUT_S = 0.4


def _status(c: LocalCluster) -> wire.BalancerStatus:
    return wire.decode(request("GET", c.url("balancer") + "/v1/status").body, wire.BalancerStatus)


def _node(c: LocalCluster, name: str) -> wire.UpstreamStatus:
    (node,) = [n for n in _status(c).nodes if n.name == name]
    return node


def _start(cluster: Callable[..., LocalCluster]) -> LocalCluster:
    c = cluster(nodes=2, sections=SECTIONS)
    c.start_nodes()
    c.start("balancer")
    for url in c.node_urls:  # a key every node has, so a read succeeds anywhere
        assert request("PUT", f"{url}/v1/kv/shared", {"value": "both"}).status == 200
    return c


def test_sigkill_during_1000_operations_loses_none(cluster: Callable[..., LocalCluster]) -> None:
    c = _start(cluster)
    b = c.url("balancer")
    done = 0
    lock = threading.Lock()

    def op(i: int) -> Response:
        nonlocal done
        if i % 2:
            r = request("PUT", f"{b}/v1/kv/op{i}", {"value": i}, timeout=5)
        else:
            r = request("GET", f"{b}/v1/kv/shared", timeout=5)
        with lock:
            done += 1
        return r

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(op, i) for i in range(1000)]
        wait_until(lambda: done >= 250, 20, 0.002, "250 operations")
        c.procs["store1"].kill()
        results = [f.result() for f in futures]
    failed = [r for r in results if r.status != 200]
    assert failed == []
    assert {r.headers["x-dtm-upstream"] for r in results[-100:]} == {"store2"}
    store1 = _node(c, "store1")
    assert not store1.healthy and store1.ejections == 1 and store1.failures >= 1
    assert _node(c, "store2").retries >= 1  # what store1 failed, store2 answered

    c.start("store1")
    wait_until(lambda: _node(c, "store1").healthy, 10, 0.02, "store1 to be readmitted")
    answered = {request("GET", f"{b}/v1/kv/shared").headers["x-dtm-upstream"] for _ in range(10)}
    assert answered == {"store1", "store2"}
    assert _node(c, "store1").readmissions == 1


def test_sigstopped_node_costs_at_most_the_timeout(cluster: Callable[..., LocalCluster]) -> None:
    c = _start(cluster)
    b = c.url("balancer")
    stopped = c.procs["store1"]
    stopped.signal(signal.SIGSTOP)
    try:
        # Concurrent clients at the moment of the hang: each is answered by store2 in time.
        def timed(_: int) -> tuple[float, Response]:
            t0 = time.monotonic()
            r = request("GET", f"{b}/v1/kv/shared", timeout=5)
            return time.monotonic() - t0, r

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(timed, range(16)))
        results += [timed(i) for i in range(20)]
        for elapsed, r in results:
            assert r.status == 200 and r.headers["x-dtm-upstream"] == "store2", r
            assert elapsed < READ_TIMEOUT_S + 0.5
        assert max(e for e, _ in results[-10:]) < 0.2  # once ejected, it costs nothing
        store1 = _node(c, "store1")
        assert not store1.healthy and store1.ejections == 1
        # Health checks keep it out while it hangs: two more fail, and it is still out.
        failed = store1.failed_checks
        wait_until(lambda: _node(c, "store1").failed_checks >= failed + 2, 10, 0.02, "2 checks")
        assert not _node(c, "store1").healthy and _node(c, "store1").ejections == 1
    finally:
        stopped.signal(signal.SIGCONT)
    wait_until(lambda: _node(c, "store1").healthy, 10, 0.02, "store1 to be readmitted")
    answered = {request("GET", f"{b}/v1/kv/shared").headers["x-dtm-upstream"] for _ in range(10)}
    assert answered == {"store1", "store2"}
