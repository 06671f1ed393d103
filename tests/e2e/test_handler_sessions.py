"""Read-your-writes and monotonic reads through the handler, with two data nodes, the balancer
spreading requests over both, and NO sync process: a session's reads can only be served by the
node that holds what the session saw, and the session token is what gets them there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.harness import LocalCluster, Response, request, running
from tests.sessions import Session

CATCH_UP_WAIT_MS = 200


@pytest.fixture(scope="module")
def cluster2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with running(
        Path(tmp_path_factory.mktemp("handler_sessions")),
        nodes=2,
        sections={"handler": {"catch_up_wait_ms": CATCH_UP_WAIT_MS}},
    ) as c:
        yield c


def ids_in(resp: Response) -> list[str]:
    assert resp.status == 200, resp
    return [item[0] for item in resp.json()["tasks"]]  # a TaskPage item is [id, text, ...]


def test_create_then_list_200_rounds_without_sync(cluster2: LocalCluster) -> None:
    url = cluster2.url("handler")
    origins: dict[str, int] = {}
    created: list[str] = []
    for round_ in range(200):
        writer = Session(url)
        resp = writer.call("POST", "/v1/tasks", {"text": "read me back"})
        assert resp.status == 201, resp
        task_id = resp.json()["id"]
        created.append(task_id)
        (origin,) = writer.nodes()
        origins[origin] = origins.get(origin, 0) + 1
        # A separate client, carrying only the token the create answered with.
        reader = Session(url, writer.token)
        assert task_id in ids_in(reader.call("GET", "/v1/tasks"))
        assert origin in reader.nodes()
        if round_ % 2:
            # Also by a short prefix. (The extra request shifts the balancer's round-robin, so
            # the creates alternate between the nodes instead of always landing on one.)
            got = Session(url, writer.token).call("GET", f"/v1/tasks/{task_id[:5]}")
            assert got.status == 200 and got.json()["id"] == task_id, got
    # The balancer really spread the writes, so the lists had to be steered to their origin.
    assert set(origins) == {"store1", "store2"}, origins
    assert min(origins.values()) >= 50, origins
    # And without a token a list sees only one node's tasks: there is no sync behind this.
    assert len(set(ids_in(Session(url).call("GET", "/v1/tasks"))) & set(created)) < 200
    status = request("GET", url + "/v1/status").json()
    assert status["not_caught_up"] == 0


def test_monotonic_reads_while_others_write(cluster2: LocalCluster) -> None:
    url = cluster2.url("handler")
    me = Session(url)
    mine = me.call("POST", "/v1/tasks", {"text": "my own"}).json()["id"]
    seen: set[str] = set()
    others: set[str] = set()
    for round_ in range(40):
        for _ in range(2):  # others write, landing on both nodes
            other = Session(url)
            assert other.call("POST", "/v1/tasks", {"text": "other"}).status == 201
            others |= other.nodes()
        now = set(ids_in(me.call("GET", "/v1/tasks")))
        assert mine in now
        assert seen <= now, f"round {round_}: {len(seen - now)} tasks vanished from a later list"
        seen = now
    assert len(seen) > 1
    assert others == {"store1", "store2"}  # so a list from the wrong node would miss tasks


def test_update_and_delete_read_with_the_token(cluster2: LocalCluster) -> None:
    url = cluster2.url("handler")
    for i in range(20):
        s = Session(url)
        task = s.call("POST", "/v1/tasks", {"text": f"change me {i}"}).json()
        # The read half of the read-modify-write must find the task on its origin node.
        upd = Session(url, s.token).call(
            "PATCH", f"/v1/tasks/{task['id'][:6]}", {"status": "complete"}
        )
        assert upd.status == 200, upd
        assert upd.json()["status"] == "complete"
        d = Session(url)
        task = d.call("POST", "/v1/tasks", {"text": f"delete me {i}"}).json()
        gone = Session(url, d.token).call("DELETE", f"/v1/tasks/{task['id']}")
        assert gone.status == 200, gone
        assert gone.json() == {"id": task["id"], "deleted": True}


def test_a_session_no_single_node_covers_is_served_by_a_merge(cluster2: LocalCluster) -> None:
    """It wrote on both nodes and there is no sync: no node covers its token alone, so the
    handler reads both and merges them (refusals: tests/e2e/test_session_merge.py)."""
    url = cluster2.url("handler")
    s = Session(url)
    mine = []
    for _ in range(10):
        r = s.call("POST", "/v1/tasks", {"text": "both sides"})
        assert r.status == 201
        mine.append(r.json()["id"])
        if s.nodes() == {"store1", "store2"}:
            break
    assert s.nodes() == {"store1", "store2"}
    resp = s.call("GET", "/v1/tasks")
    assert set(mine) <= set(ids_in(resp))


def test_one_session_across_every_operation_with_sync(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """With the sync running, one session's writes land on both nodes and it still sees each of
    them at once, in every later read, by separate clients passing the token along."""
    c = LocalCluster(Path(tmp_path_factory.mktemp("handler_sync")), nodes=2)
    try:
        c.start_nodes()
        c.start("balancer")
        c.start("handler")
        c.start("sync")
        url = c.url("handler")
        token = ""
        live: dict[str, str] = {}  # id -> status, as this session last wrote it
        for i in range(40):
            s = Session(url, token)
            task = s.call("POST", "/v1/tasks", {"text": f"session task {i}"})
            assert task.status == 201, task
            live[task.json()["id"]] = "open"
            if i % 3 == 1:
                victim = sorted(live)[0]
                done = Session(url, s.token)
                resp = done.call("PATCH", f"/v1/tasks/{victim}", {"status": "complete"})
                assert resp.status == 200, resp
                live[victim] = "complete"
                s.token = done.token
            if i % 5 == 4:
                victim = sorted(live)[-1]
                gone = Session(url, s.token)
                assert gone.call("DELETE", f"/v1/tasks/{victim}").status == 200
                del live[victim]
                s.token = gone.token
            reader = Session(url, s.token)
            resp = reader.call("GET", "/v1/tasks")
            assert resp.status == 200, resp
            got = {item[0]: item[2] for item in resp.json()["tasks"]}  # [id, text, status, ...]
            assert got == live, f"round {i}: the list differs from this session's writes"
            token = reader.token
        assert json.loads(token)["versions"].keys() == {"store1", "store2"}
    finally:
        c.stop_all()
