"""A write whose answer is lost is never re-sent by the handler, and the client is told that it
may have been applied (ErrMaybeApplied, 502), not that the balancer could not be reached.

The data node is paused (SIGSTOP) so that the write is held in flight inside the balancer; the
balancer is then killed (SIGKILL) with the write in flight.
"""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tests.harness import Response, request, running, wait_until


def _in_flight(url: str) -> int:
    n: int = request("GET", url + "/v1/status").json()["in_flight"]
    return n


@pytest.mark.timeout(60)
def test_balancer_sigkilled_with_a_write_in_flight_answers_maybe_applied(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = Path(tmp_path_factory.mktemp("write_fate"))
    with running(root, nodes=1, sections={"balancer": {"read_timeout_ms": 20000}}) as c:
        url, balancer = c.url("handler"), c.url("balancer")
        # A first create, so the handler holds a keep-alive connection to the balancer.
        assert request("POST", url + "/v1/tasks", {"text": "warm"}).status == 201
        node = c.procs["store1"]
        node.signal(signal.SIGSTOP)
        try:
            with ThreadPoolExecutor(1) as pool:
                fut = pool.submit(request, "POST", url + "/v1/tasks", {"text": "in flight"})
                wait_until(lambda: _in_flight(balancer) == 1, 10, 0.02, "the write in flight")
                c.procs["balancer"].signal(signal.SIGKILL)
                resp: Response = fut.result(timeout=20)
        finally:
            node.signal(signal.SIGCONT)
        assert resp.status == 502, resp
        body = resp.json()
        assert body["error"] == "ErrMaybeApplied", body
        assert "may have been created" in body["message"], body
        # The balancer back: whatever the fate of the write, there is at most one such task.
        c.procs["balancer"].popen.wait(timeout=5)
        c.start("balancer")
        listed = request("GET", url + "/v1/tasks").json()["tasks"]
        assert [item[1] for item in listed].count("in flight") <= 1


@pytest.mark.timeout(60)
def test_a_write_to_a_balancer_that_is_not_there_is_unavailable_not_maybe(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Nothing was sent: the connection could not be opened, so the write surely did not apply.
    root = Path(tmp_path_factory.mktemp("write_fate_down"))
    with running(root, nodes=1, components=("handler",)) as c:
        resp = request("POST", c.url("handler") + "/v1/tasks", {"text": "x"})
        assert resp.status == 503 and resp.json()["error"] == "ErrUnavailable", resp
        assert "cannot reach" in resp.json()["message"]
