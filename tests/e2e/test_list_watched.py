"""Lists served from the handler's copy without a round trip, while a watch of each node vouches.

Against real processes (two nodes, the balancer, the handler, the sync): a node holds a status
watch until its version moves; the handler then serves a list from the copy the node's latest
report names, asking no node; a write that did not pass through the handler shows in lists as
soon as the node reports it; a session's own writes are in its very next list.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from tests.harness import LocalCluster, Response, request, wait_until

TIME = b"2026-12-01T00:00:00.000Z"
VALUE = b'{"text":"%s","status":"open","created":"' + TIME + b'","updated":"' + TIME + b'"}'


def _metric(url: str, name: str) -> float:
    text = request("GET", url + "/metrics").body.decode()
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    assert m is not None, (name, text[-400:])
    return float(m.group(1))


def _put(url: str, task_id: str, text: str) -> int:
    r = request("PUT", f"{url}/v1/kv/tester.{task_id}", b'{"value":' + VALUE % text.encode() + b"}")
    assert r.status == 200, r
    version: int = r.json()["version"]
    return version


def _texts(resp: Response) -> list[str]:
    assert resp.status == 200, resp
    return sorted(item[1] for item in resp.json()["tasks"])


def test_a_node_holds_a_status_watch_until_its_version_is_not_the_callers(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=1)
    c.start("store1")
    url = c.url("store1")
    v = request("GET", url + "/v1/status").json()["last_version"]
    # Not the caller's version: answered at once, however long the caller would wait.
    at_once = request("GET", f"{url}/v1/status?since={v + 5}&wait=60000", timeout=5)
    assert at_once.status == 200 and at_once.json()["last_version"] == v
    # The caller's version: held until the wait runs out, then answered as it is.
    held_out = request("GET", f"{url}/v1/status?since={v}&wait=50", timeout=5)
    assert held_out.json()["last_version"] == v

    answers: list[Response] = []
    watcher = threading.Thread(
        target=lambda: answers.append(
            request("GET", f"{url}/v1/status?since={v}&wait=60000", timeout=30)
        )
    )
    watcher.start()
    try:
        wait_until(
            lambda: _metric(url, "dtm_node_longpoll_waiters") >= 1, 10, 0.01, "the watch to park"
        )
        assert not answers
        written = _put(url, "000000000001", "one")
    finally:
        watcher.join(30)
    assert len(answers) == 1 and answers[0].status == 200
    status = answers[0].json()
    assert status["last_version"] == written == v + 1 and status["node"] == "store1"

    bad_queries = ("since=x", f"since={v}&wait=99999999", "wait=-1", "since=1&since=2", "until=3")
    for bad in bad_queries:
        r = request("GET", f"{url}/v1/status?{bad}", timeout=5)
        assert r.status == 400 and r.json()["error"] == "ErrSyntaxInvalidArgs", (bad, r)


def test_lists_skip_the_round_trip_while_the_watch_vouches_and_see_other_writes_soon(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=2)
    c.start_nodes()
    for comp in ("balancer", "handler", "sync"):
        c.start(comp)
    handler_url = c.url("handler")
    tasks_url = handler_url + "/v1/tasks"
    token = ""

    def call(method: str, path: str = "", body: object = None) -> Response:
        nonlocal token
        r = request(method, tasks_url + path, body, {"X-Dtm-Session": token} if token else {})
        token = r.headers.get("x-dtm-session", token)
        return r

    ids = [call("POST", body={"text": f"task {i}"}).json()["id"] for i in range(3)]
    wait_until(
        lambda: all(
            len(request("GET", f"{u}/v1/kv?limit=10").json()["rows"]) == 3 for u in c.node_urls
        ),
        20,
        0.05,
        "both nodes to hold the three tasks",
    )
    want = ["task 0", "task 1", "task 2"]

    def unasked() -> float:
        return _metric(handler_url, "dtm_handler_pages_unasked_total")

    # The first lists fill the copies and start the watch; then its reports vouch for them.
    wait_until(
        lambda: _texts(request("GET", tasks_url)) == want and unasked() > 0,
        10,
        0.02,
        "a list served without asking a node",
    )
    nodes_asked = sum(_metric(u, "dtm_node_pages_not_modified_total") for u in c.node_urls)
    before = unasked()
    for _ in range(20):
        assert _texts(request("GET", tasks_url)) == want
    assert unasked() == before + 20  # nothing changed: every one of them
    assert sum(_metric(u, "dtm_node_pages_not_modified_total") for u in c.node_urls) == nodes_asked

    # A write that did not pass through this handler, on one node: once the nodes report it
    # (store2 at once, store1 when the sync has copied it), every list shows it.
    _put(c.node_urls[1], "zzzzzzzzzzzz", "written on store2")
    want = [*want, "written on store2"]
    wait_until(
        lambda: all(_texts(request("GET", tasks_url)) == want for _ in range(4)),
        10,
        0.02,
        "lists to show the write made on store2",
    )

    # Read-your-writes through the copies: the session's own write is in its very next list.
    for i in range(8):
        assert call("PATCH", f"/{ids[1]}", {"text": f"changed {i}"}).status == 200
        assert f"changed {i}" in _texts(call("GET"))
    assert call("DELETE", f"/{ids[0]}").status == 200
    assert "task 0" not in _texts(call("GET"))
