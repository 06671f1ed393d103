"""Lists served again from the handler's copy of a node page: revalidated with the node's ETag,
or vouched for by the handler's watch of the node's version without a round trip.

Against real processes (two nodes, the balancer, the handler, the sync): a node answers a scan
with a tag and 304 to a caller that holds the current one; any write, on either node, gives a
new tag, so a revalidated list never serves a copy older than the node it asks. A node holds a
status watch until its version moves; with the watch on (as deployed) the handler serves a list
from the copy the node's latest report names, asking no node, and a write that did not pass
through the handler shows as soon as the node reports it. The session guarantees hold through
the copies either way: a session's own writes are in its very next list.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from tests.harness import LocalCluster, Response, request, wait_until
from tests.sessions import Session

TIME = b"2026-12-01T00:00:00.000Z"
VALUE = b'{"text":"%s","status":"open","created":"' + TIME + b'","updated":"' + TIME + b'"}'
WANT = ["task 0", "task 1", "task 2"]


def _metric(url: str, name: str) -> float:
    text = request("GET", url + "/metrics").body.decode()
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    assert m is not None, (name, text[-400:])
    return float(m.group(1))


def _texts(resp: Response) -> list[str]:
    assert resp.status == 200, resp
    return sorted(item[1] for item in resp.json()["tasks"])  # (in ID order: random IDs)


def _put(url: str, task_id: str, text: str) -> int:
    r = request("PUT", f"{url}/v1/kv/tester.{task_id}", b'{"value":' + VALUE % text.encode() + b"}")
    assert r.status == 200, r
    version: int = r.json()["version"]
    return version


def _three_tasks(c: LocalCluster, **handler: Any) -> tuple[Session, list[str]]:
    """The whole cluster running (``handler``: its settings), a session that created three tasks,
    both nodes holding them; the session and the tasks' IDs."""
    c.start_nodes()
    for comp in ("balancer", "handler", "sync"):
        c.start(comp)
    s = Session(c.url("handler") + "/v1/tasks")
    ids = [s.call("POST", body={"text": f"task {i}"}).json()["id"] for i in range(3)]
    wait_until(
        lambda: all(
            len(request("GET", f"{u}/v1/kv?limit=10").json()["rows"]) == 3 for u in c.node_urls
        ),
        20,
        0.05,
        "both nodes to hold the three tasks",
    )
    return s, ids


def _own_writes_in_the_next_list(s: Session, ids: list[str], others: list[str]) -> None:
    """Read-your-writes through the copies: the session's own write is in its very next list."""
    for i in range(8):
        assert s.call("PATCH", f"/{ids[1]}", {"text": f"changed {i}"}).status == 200
        assert _texts(s.call("GET")) == sorted(["task 0", f"changed {i}", "task 2", *others])
    assert s.call("DELETE", f"/{ids[0]}").status == 200
    assert _texts(s.call("GET")) == sorted(["changed 7", "task 2", *others])


def test_a_node_tags_its_live_pages_and_answers_304_to_the_current_tag(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=1)
    c.start("store1")
    url = c.url("store1")
    _put(url, "000000000001", "one")
    scan = f"{url}/v1/kv?after=tester.&limit=100"
    first = request("GET", scan)
    tag = first.headers["etag"]
    assert first.status == 200 and tag.startswith('"store1.')
    again = request("GET", scan, headers={"If-None-Match": f'"other", {tag}'})
    assert again.status == 304 and again.body == b"" and again.headers["etag"] == tag
    assert '"store1":1' in again.headers["x-dtm-session"]  # the node's claim still comes
    assert request("GET", scan, headers={"If-None-Match": "W/" + tag}).status == 200
    assert "etag" not in request("GET", scan + "&tombstones=1").headers  # purges move no version
    _put(url, "000000000002", "two")
    after_write = request("GET", scan, headers={"If-None-Match": tag})
    assert after_write.status == 200 and after_write.headers["etag"] != tag
    assert [r["key"] for r in after_write.json()["rows"]][-1] == "tester.000000000002"


def test_lists_reuse_the_handlers_copy_until_any_node_changes_and_never_serve_an_older_one(
    cluster: Callable[..., LocalCluster],
) -> None:
    # Without the watch of the nodes: every list asks a node.
    c = cluster(nodes=2, sections={"handler": {"page_watch": False}})
    s, ids = _three_tasks(c)
    handler = c.url("handler")

    def reused() -> float:
        return _metric(handler, "dtm_handler_pages_reused_total")

    assert _texts(s.call("GET")) == WANT
    before = reused()
    for _ in range(6):  # both nodes have served it once by now: every list is a 304 and a copy
        assert _texts(s.call("GET")) == WANT
    assert reused() >= before + 4

    # A write that did not pass through this handler, on one node: once the sync has copied it,
    # every list shows it, whichever node answers.
    _put(c.node_urls[1], "zzzzzzzzzzzz", "written on store2")
    wait_until(
        lambda: len(request("GET", f"{c.node_urls[0]}/v1/kv?limit=10").json()["rows"]) == 4,
        20,
        0.05,
        "the sync to copy the write to store1",
    )
    for _ in range(6):
        assert _texts(request("GET", handler + "/v1/tasks")) == [*WANT, "written on store2"]
    _own_writes_in_the_next_list(s, ids, ["written on store2"])


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
    s, ids = _three_tasks(c)
    handler = c.url("handler")
    tasks_url = handler + "/v1/tasks"

    def unasked() -> float:
        return _metric(handler, "dtm_handler_pages_unasked_total")

    # The first lists fill the copies and start the watch; then its reports vouch for them.
    wait_until(
        lambda: _texts(request("GET", tasks_url)) == WANT and unasked() > 0,
        10,
        0.02,
        "a list served without asking a node",
    )
    nodes_asked = sum(_metric(u, "dtm_node_pages_not_modified_total") for u in c.node_urls)
    before = unasked()
    for _ in range(20):
        assert _texts(request("GET", tasks_url)) == WANT
    assert unasked() == before + 20  # nothing changed: every one of them
    assert sum(_metric(u, "dtm_node_pages_not_modified_total") for u in c.node_urls) == nodes_asked

    # A write that did not pass through this handler, on one node: once the nodes report it
    # (store2 at once, store1 when the sync has copied it), every list shows it.
    _put(c.node_urls[1], "zzzzzzzzzzzz", "written on store2")
    wait_until(
        lambda: all(
            _texts(request("GET", tasks_url)) == [*WANT, "written on store2"] for _ in range(4)
        ),
        10,
        0.02,
        "lists to show the write made on store2",
    )
    _own_writes_in_the_next_list(s, ids, ["written on store2"])
