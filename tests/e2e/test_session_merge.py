"""A session whose writes no single node holds (it wrote on two nodes, and the sync is stopped)
is served by merging the nodes' answers by the write order, tombstones included; it is refused
only when a node holding its writes is unreachable, and then the error says which and how out."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.harness import TEST_USER, LocalCluster, Response, request, wait_until
from tests.sessions import Session


class Client(Session):
    """One session that can put its writes on both nodes."""

    def on_both_nodes(self) -> list[str]:
        """Create tasks until the token names both nodes; their IDs."""
        made = []
        for i in range(20):
            r = self.call("POST", "/v1/tasks", {"text": f"more {i}"})
            assert r.status == 201, r
            made.append(r.json()["id"])
            if self.nodes() == {"store1", "store2"}:
                return made
        raise AssertionError("the creates never reached both nodes")


def _listed(resp: Response) -> dict[str, str]:
    assert resp.status == 200, resp
    return {item[0]: item[2] for item in resp.json()["tasks"]}  # [id, text, status, ...]


def _row(url: str, task_id: str) -> Response:
    return request("GET", f"{url}/v1/kv/{TEST_USER}.{task_id}?tombstones=1")


def test_with_the_sync_stopped_a_merged_read_shows_every_own_update_and_delete(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=2)
    c.start_nodes()
    for comp in ("balancer", "handler", "sync"):
        c.start(comp)
    s1, s2 = c.url("store1"), c.url("store2")
    s = Client(c.url("handler"))
    gone = s.call("POST", "/v1/tasks", {"text": "delete me"}).json()["id"]
    done = s.call("POST", "/v1/tasks", {"text": "complete me"}).json()["id"]
    wait_until(
        lambda: all(_row(u, t).status == 200 for u in (s1, s2) for t in (gone, done)),
        10,
        0.05,
        "the sync to copy both tasks to both nodes",
    )
    c.procs["sync"].stop()
    assert s.call("PATCH", f"/v1/tasks/{done}", {"status": "complete"}).status == 200
    assert s.call("DELETE", f"/v1/tasks/{gone}").status == 200
    made = s.on_both_nodes()
    # One node holds the tombstone, the other still the live row: only the order can tell.
    rows = [_row(u, gone).json() for u in (s1, s2)]
    assert sorted(r["deleted"] for r in rows) == [False, True], rows
    for _ in range(6):
        got = _listed(s.call("GET", "/v1/tasks"))
        assert gone not in got
        assert got[done] == "complete"
        assert set(made) <= set(got)
        assert s.call("GET", f"/v1/tasks/{gone}").status == 404
        assert s.call("GET", f"/v1/tasks/{done}").json()["status"] == "complete"


def test_a_session_whose_writes_are_on_an_unreachable_node_is_told_why_and_how_out(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=2, sections={"handler": {"catch_up_wait_ms": 200}})
    c.start_nodes()
    c.start("balancer")
    c.start("handler")
    s = Client(c.url("handler"))
    s.on_both_nodes()
    assert _listed(s.call("GET", "/v1/tasks"))  # merged: served
    c.procs["store2"].stop()
    token = s.token
    r = s.call("GET", "/v1/tasks")
    assert r.status == 409, r
    body = r.json()
    assert body["error"] == "ErrNotCaughtUp"
    message = body["message"]
    assert "store2" in message and "unreachable" in message, message
    assert "the sync is not running" in message, message
    assert "todo session reset" in message, message
    assert json.loads(r.headers["x-dtm-session"]) == json.loads(token)  # nothing lost


def test_a_pinned_read_goes_to_its_node_only_and_tombstones_are_answered_on_request(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=2)
    c.start_nodes()
    c.start("balancer")
    lb, s1 = c.url("balancer"), c.url("store1")
    assert request("PUT", f"{s1}/v1/kv/a.k", {"value": 1}).status == 200
    assert request("PUT", f"{s1}/v1/kv/a.j", {"value": 2}).status == 200
    for _ in range(4):  # whatever the balancer's turn
        r = request("GET", f"{lb}/v1/kv/a.k", headers={"X-Dtm-Node": "store2"})
        assert r.status == 404 and r.headers["x-dtm-upstream"] == "store2", r
        r = request("GET", f"{lb}/v1/kv/a.k", headers={"X-Dtm-Node": "store1"})
        assert r.status == 200 and r.headers["x-dtm-upstream"] == "store1", r
    assert request("DELETE", f"{s1}/v1/kv/a.k").status == 200
    assert request("GET", f"{s1}/v1/kv/a.k").status == 404
    dead = request("GET", f"{s1}/v1/kv/a.k?tombstones=1")
    assert dead.status == 200 and dead.json()["deleted"] is True and dead.json()["value"] is None
    assert [r["key"] for r in request("GET", f"{s1}/v1/kv").json()["rows"]] == ["a.j"]
    page = request("GET", f"{s1}/v1/kv?tombstones=1").json()["rows"]
    assert [(r["key"], r["deleted"]) for r in page] == [("a.j", False), ("a.k", True)]
    assert request("GET", f"{s1}/v1/kv?tombstones=2").status == 400
    c.procs["store2"].stop()
    r = request("GET", f"{lb}/v1/kv/a.j", headers={"X-Dtm-Node": "store2"})
    assert r.status == 503 and r.json()["error"] == "ErrUnavailable", r
