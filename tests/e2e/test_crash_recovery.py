"""A crashed balancer, handler or sync, SIGKILLed and started again at once (as supervisord does),
answers again; a request the handler takes while the balancer is down waits for it instead of
failing; a crash point armed in the sync's environment kills it between two steps of its loop.
Each test prints the time from the kill to the first successful answer (`-s` shows it;
docs/reliability.md quotes them); none asserts a time."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

import pytest
from syncutil import put, rows
from tests.harness import LocalCluster, Response, request, wait_until

from dtm.core import crashpoint

Answer = tuple[str, Response, float]  # method, answer, when it came


def _kill(c: LocalCluster, component: str) -> float:
    """SIGKILL ``component`` and reap it; the monotonic time of the kill."""
    proc = c.procs[component]
    at = time.monotonic()
    proc.signal(signal.SIGKILL)
    proc.popen.wait(timeout=10)
    return at


def _full(c: LocalCluster) -> None:
    c.start_nodes()
    for comp in ("balancer", "sync", "handler"):
        c.start(comp)


def _in_flight(c: LocalCluster) -> int:
    n: int = request("GET", c.url("handler") + "/v1/status").json()["in_flight"]
    return n


@pytest.mark.timeout(90)
def test_requests_sent_while_the_balancer_restarts_succeed(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=2)
    _full(c)
    api = c.url("handler") + "/v1/tasks"
    tid = request("POST", api, {"text": "before"}).json()["id"]
    for _ in range(3):
        killed = _kill(c, "balancer")
        answers: list[Answer] = []

        def call(method: str, path: str, body: object = None, out: list[Answer] = answers) -> None:
            r = request(method, api + path, body, timeout=20)
            out.append((method, r, time.monotonic()))

        calls = [
            threading.Thread(target=call, args=("POST", "", {"text": "during"})),
            threading.Thread(target=call, args=("GET", f"/{tid}")),
            threading.Thread(target=call, args=("GET", "")),
        ]
        for t in calls:
            t.start()
        # the calls are in the handler while nothing listens on the balancer's port (the status
        # request that asks counts itself too)
        wait_until(lambda: _in_flight(c) >= 4, 10, 0.005, "the 3 calls to reach the handler")
        c.start("balancer", wait=False)
        for t in calls:
            t.join(timeout=30)
        assert [(m, r.status) for m, r, _ in answers] == [
            (m, 201 if m == "POST" else 200) for m, r, _ in answers
        ] and len(answers) == 3, answers
        back = min(at for _, _, at in answers) - killed
        print(f"balancer SIGKILL -> first successful operation: {back:.3f} s")
        c.wait_healthy("balancer")


@pytest.mark.timeout(90)
def test_a_killed_handler_started_again_answers(cluster: Callable[..., LocalCluster]) -> None:
    c = cluster(nodes=2)
    _full(c)
    api = c.url("handler") + "/v1/tasks"
    tid = request("POST", api, {"text": "before"}).json()["id"]
    for _ in range(3):
        killed = _kill(c, "handler")
        c.start("handler", wait=False)

        def answers() -> bool:
            try:
                return request("GET", f"{api}/{tid}", timeout=2).status == 200
            except OSError:
                return False

        wait_until(answers, 30, 0.01, "the restarted handler to answer")
        print(f"handler SIGKILL -> first successful operation: {time.monotonic() - killed:.3f} s")


@pytest.mark.timeout(90)
def test_a_killed_sync_started_again_replicates(cluster: Callable[..., LocalCluster]) -> None:
    c = cluster(nodes=2)
    c.start_nodes()
    c.start("sync")
    s1, s2 = c.node_urls
    for i in range(3):
        put(s1, f"before{i}", i)
        wait_until(lambda i=i: f"before{i}" in rows(s2), 20, 0.02, "the first write on store2")
        killed = _kill(c, "sync")
        c.start("sync", wait=False)
        put(s1, f"after{i}", i)
        wait_until(lambda i=i: f"after{i}" in rows(s2), 30, 0.01, "a write made after the crash")
        print(f"sync SIGKILL -> first write replicated: {time.monotonic() - killed:.3f} s")


@pytest.mark.timeout(90)
def test_a_crash_point_kills_the_sync_after_a_batch_applied_and_a_restart_finishes_it(
    cluster: Callable[..., LocalCluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    c = cluster(nodes=2)
    c.start_nodes()
    s1, s2 = c.node_urls
    monkeypatch.setenv(crashpoint.ENV, "applied:1")
    proc = c.start("sync")
    monkeypatch.delenv(crashpoint.ENV)
    put(s1, "k", 1)
    assert proc.popen.wait(timeout=30) == -signal.SIGKILL, proc.log_tail()
    assert "crash point applied:1 reached" in proc.log_tail()
    assert "k" in rows(s2)  # applied there; the cursor was never saved
    c.start("sync")
    put(s1, "k2", 2)
    wait_until(lambda: {"k", "k2"} <= set(rows(s2)), 30, 0.02, "both writes on store2")


@pytest.mark.timeout(60)
def test_a_bad_crash_point_stops_the_sync_at_start(
    cluster: Callable[..., LocalCluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    c = cluster(nodes=1)
    monkeypatch.setenv(crashpoint.ENV, "lunch:2")
    proc = c.start("sync", wait=False)
    assert proc.popen.wait(timeout=30) == 2, proc.log_tail()
    assert crashpoint.ENV in proc.log_tail()
