"""A write the balancer gave up on (and retried elsewhere) must never apply late.

A SIGSTOPped node still accepts TCP connections: the balancer's PUT sits in its socket buffer,
times out, and succeeds on the other node. When the node is resumed it reads that PUT; applying
it then would stamp a stale duplicate *after* newer writes of the key (a lost update). The
balancer sends an X-Dtm-Deadline with every write and the node refuses what arrives past it.
"""

from __future__ import annotations

import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from tests.harness import LocalCluster, Response, expected_auth, request, wait_until

from dtm.core.deadline import too_late


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


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@contextmanager
def _writer_stalled(c: LocalCluster, node: str) -> Iterator[Callable[[], None]]:
    """Hold the write lock of ``node``'s database from outside, as a busy lock or a slow fsync
    would: its writer thread waits in BEGIN before it stamps anything. Yields the release."""
    lock = sqlite3.connect(c.db_path(node), isolation_level=None, timeout=5)
    lock.execute("BEGIN IMMEDIATE")
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            lock.execute("ROLLBACK")
            lock.close()

    try:
        yield release
    finally:
        release()


def _in_background(call: Callable[[], Response]) -> Callable[[], Response]:
    """Run ``call`` on a thread; the returned function joins it (with a deadline) and answers."""
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(call()), daemon=True)
    t.start()

    def join() -> Response:
        t.join(20)
        assert out, "the request did not finish"
        answer: Response = out[0]
        return answer

    return join


@pytest.mark.timeout(60)
def test_a_write_that_waited_in_the_writer_past_its_deadline_is_not_stamped(
    cluster: Callable[..., LocalCluster],
) -> None:
    """The write arrives in time (the arrival check passes) and then waits for the writer; by
    the time the writer could stamp it the deadline is long gone: ErrTimeout, nothing stored."""
    c = cluster(nodes=1, node_options={"store1": {"max_clock_offset_ms": 100}})
    c.start("store1")
    url = c.url("store1")
    with _writer_stalled(c, "store1") as release:
        deadline = _now_ms() + 300
        headers = {"X-Dtm-Deadline": str(deadline)}
        answer = _in_background(lambda: request("PUT", f"{url}/v1/kv/k", {"value": 1}, headers))
        # past the deadline, and past the clock tolerance too
        wait_until(lambda: _now_ms() > deadline + 200, 5, 0.01, "the deadline to pass")
        release()
        r = answer()
    assert r.status == 504 and r.json()["error"] == "ErrTimeout", r
    assert "after its deadline" in r.json()["message"]
    assert request("GET", f"{url}/v1/kv/k").status == 404
    assert request("GET", f"{url}/v1/status").json()["last_version"] == 0
    assert _late_writes(url) == 1
    # a write in time still goes through
    headers = {"X-Dtm-Deadline": str(_now_ms() + 10_000)}
    assert request("PUT", f"{url}/v1/kv/k", {"value": 2}, headers).status == 200


@pytest.mark.timeout(90)
def test_a_queued_write_frozen_with_its_node_cannot_win_over_a_later_write(
    cluster: Callable[..., LocalCluster],
) -> None:
    """store1 takes a PUT of v1 into its writer's queue (the writer stalled) and is frozen; the
    balancer times out, retries on store2, acknowledges; the client then writes v2. Resumed,
    store1 must not commit v1 with a fresh stamp: after the sync, every node holds v2."""
    c = cluster(
        nodes=2,
        sections={
            "balancer": {
                "health_interval_ms": 60_000,  # keep the health checks out of the way
                "connect_timeout_ms": 300,
                "read_timeout_ms": 500,
            }
        },
        node_options={n: {"max_clock_offset_ms": 50} for n in ("store1", "store2")},
    )
    c.start_nodes()
    c.start("balancer")  # a fresh balancer tries store1 first on its first request
    lb, s1, s2 = c.url("balancer"), c.url("store1"), c.url("store2")
    with _writer_stalled(c, "store1") as release:
        first = request("PUT", f"{lb}/v1/kv/k", {"value": "v1"}, timeout=20)
        assert first.status == 200, first
        assert first.json()["origin"] == "store2" and first.headers["x-dtm-upstream"] == "store2"
        nodes = {n["name"]: n for n in request("GET", f"{lb}/v1/status").json()["nodes"]}
        assert nodes["store1"]["failures"] == 1, nodes  # it took v1 and did not answer in time
        c.procs["store1"].signal(signal.SIGSTOP)
        try:
            # the client's next write, after the acknowledgement (it saw v1's stamp)
            hlc = {"X-Dtm-Hlc": str(first.json()["hlc"])}
            second = request("PUT", f"{lb}/v1/kv/k", {"value": "v2"}, hlc, timeout=20)
            assert second.status == 200, second
            assert second.json()["hlc"] > first.json()["hlc"]
            release()
        finally:
            c.procs["store1"].signal(signal.SIGCONT)
    wait_until(
        lambda: _late_writes(s1) >= 1 or request("GET", f"{s1}/v1/kv/k").status == 200,
        10,
        0.05,
        "store1's writer to get to the queued write",
    )
    late = request("GET", f"{s1}/v1/kv/k")
    assert late.status == 404, f"the late copy was committed: {late.json()}"
    c.start("sync")

    def converged() -> bool:
        rows = [request("GET", f"{u}/v1/kv/k") for u in (s1, s2)]
        return all(r.status == 200 and r.json()["value"] == "v2" for r in rows)

    wait_until(converged, 15, 0.05, "both nodes to hold the later write v2")
    assert request("GET", f"{s1}/v1/kv/k").json()["origin"] == "store2"


def _balancer_status(lb: str) -> dict[str, Any]:
    body: dict[str, Any] = request("GET", f"{lb}/v1/status").json()
    return body


def _frozen_first_node(c: LocalCluster) -> tuple[str, str]:
    """A fresh balancer (which tries store1 first) in front of store1, frozen, and store2."""
    c.start_nodes()
    c.start("balancer")
    c.procs["store1"].signal(signal.SIGSTOP)
    return c.url("balancer"), c.url("store2")


_QUICK_BALANCER = {
    "balancer": {
        "health_interval_ms": 60_000,  # keep the frozen node in rotation
        "connect_timeout_ms": 300,
        "read_timeout_ms": 300,
    }
}


@pytest.mark.timeout(60)
def test_a_write_whose_caller_left_is_not_sent_to_another_node(
    cluster: Callable[..., LocalCluster],
) -> None:
    """The caller (a handler that was killed) sends a PUT and goes away while store1, frozen,
    holds it. Retried on store2 after the first copy's deadline, it would be stamped after the
    caller's later writes (the caller saw its connection drop and went on): it is not sent."""
    c = cluster(nodes=2, sections=_QUICK_BALANCER)
    lb, s2 = _frozen_first_node(c)
    try:
        port = int(lb.rsplit(":", 1)[1])
        auth = expected_auth(port, "/v1/kv/k") or ""
        body = b'{"value":1}'
        head = (
            f"PUT /v1/kv/k HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(head.encode() + body)
            wait_until(
                lambda: _balancer_status(lb)["nodes"][0]["in_flight"] == 1,
                10,
                0.02,
                "the balancer to send the PUT to store1",
            )
        # the caller is gone; the balancer's attempt on store1 times out, and then ...
        wait_until(
            lambda: (
                _balancer_status(lb)["unanswered"] >= 1
                or request("GET", f"{s2}/v1/kv/k").status == 200
            ),
            10,
            0.05,
            "the balancer to give up on the PUT, or to retry it on store2",
        )
        assert request("GET", f"{s2}/v1/kv/k").status == 404, "retried for a caller that left"
    finally:
        c.procs["store1"].signal(signal.SIGCONT)


@pytest.mark.timeout(60)
def test_no_attempt_of_a_write_outlives_its_callers_deadline(
    cluster: Callable[..., LocalCluster],
) -> None:
    """The caller says when it stops waiting (X-Dtm-Deadline): no attempt may be stamped after
    it, and a retry that could not go before it is not sent."""
    c = cluster(nodes=2, sections=_QUICK_BALANCER)
    lb, s2 = _frozen_first_node(c)
    try:
        # store1 times out at 300 ms; a retry could go at 350 ms: after this caller's deadline
        soon = str(time.time_ns() // 1_000_000 + 320)
        r = request("PUT", f"{lb}/v1/kv/k", {"value": 1}, {"X-Dtm-Deadline": soon}, timeout=10)
        assert r.status == 502 and r.json()["error"] == "ErrMaybeApplied", r
        assert request("GET", f"{s2}/v1/kv/k").status == 404, "retried past the caller's deadline"
        later = str(time.time_ns() // 1_000_000 + 10_000)
        r = request("PUT", f"{lb}/v1/kv/k", {"value": 2}, {"X-Dtm-Deadline": later}, timeout=10)
        assert r.status == 200 and r.json()["origin"] == "store2", r  # time for a retry: sent
        bad = request("PUT", f"{lb}/v1/kv/k", {"value": 3}, {"X-Dtm-Deadline": "soon"})
        assert bad.status == 400, bad
    finally:
        c.procs["store1"].signal(signal.SIGCONT)
