"""Lists served again from the handler's copy of a node page, revalidated with the node's ETag.

Against real processes (two nodes, the balancer, the handler, the sync): a node answers a scan
with a tag and 304 to a caller that holds the current one; any write, on either node, gives a
new tag, so a list never serves a copy older than the node it asks; the session guarantees
hold through the copies.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.harness import LocalCluster, Response, request, wait_until

TIME = b"2026-12-01T00:00:00.000Z"
VALUE = b'{"text":"%s","status":"open","created":"' + TIME + b'","updated":"' + TIME + b'"}'


def _reused(c: LocalCluster) -> int:
    text = request("GET", c.url("handler") + "/metrics").body.decode()
    m = re.search(r"^dtm_handler_pages_reused_total (\S+)$", text, re.M)
    assert m is not None, text[-400:]
    return int(float(m.group(1)))


def _texts(resp: Response) -> list[str]:
    assert resp.status == 200, resp
    return sorted(item[1] for item in resp.json()["tasks"])  # (in ID order: random IDs)


def _put(url: str, task_id: str, text: str) -> None:
    r = request("PUT", f"{url}/v1/kv/tester.{task_id}", b'{"value":' + VALUE % text.encode() + b"}")
    assert r.status == 200, r


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
    # Without the watch of the nodes (tests/e2e/test_list_watched.py): every list asks a node.
    c = cluster(nodes=2, sections={"handler": {"page_watch": False}})
    c.start_nodes()
    for comp in ("balancer", "handler", "sync"):
        c.start(comp)
    handler = c.url("handler") + "/v1/tasks"
    token = ""

    def call(method: str, path: str = "", body: object = None) -> Response:
        nonlocal token
        r = request(method, handler + path, body, {"X-Dtm-Session": token} if token else {})
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
    assert _texts(call("GET")) == want
    before = _reused(c)
    for _ in range(6):  # both nodes have served it once by now: every list is a 304 and a copy
        assert _texts(call("GET")) == want
    assert _reused(c) >= before + 4

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
        assert _texts(request("GET", handler)) == [*want, "written on store2"]

    # Read-your-writes through the copies: the session's own update is in its next list.
    assert call("PATCH", f"/{ids[1]}", {"text": "changed"}).status == 200
    assert _texts(call("GET")) == sorted(["task 0", "changed", "task 2", "written on store2"])
    assert call("DELETE", f"/{ids[0]}").status == 200
    assert _texts(call("GET")) == sorted(["changed", "task 2", "written on store2"])
