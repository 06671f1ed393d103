"""`[handler] write_copies = 2` without the sync: the handler itself delivers the row the first
node stored to the others (`POST /v1/replicate`, straight to the nodes), so a write is held by two
nodes when it is acknowledged whether or not the sync runs.

The pushed copy is the same write — the same (hlc, origin, value, deleted) on both nodes — and
claims nothing about the first node's feed: the other node's record of how far it applied that
feed does not move, so a session that wrote on one node still cannot be served by the other on
the strength of the push; once the sync runs, its delivery of the same rows changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from syncutil import node_status, rows
from tests.harness import TEST_USER, LocalCluster, request, wait_until

COPY_WAIT_MS = 3000
TIMEOUT_S = COPY_WAIT_MS / 1000 + 10


def start_without_sync(c: LocalCluster) -> None:
    c.start_nodes()
    c.start("balancer")
    c.start("handler")


def task_rows(
    c: LocalCluster, task_id: str, names: list[str] | None = None
) -> dict[str, tuple[bool, int, str, str]]:
    """The task's row on each node (of ``names``) that holds it: node -> (deleted, hlc, origin,
    value)."""
    out: dict[str, tuple[bool, int, str, str]] = {}
    for name in names or c.node_names:
        for key, row in rows(c.url(name)).items():
            if key.endswith("." + task_id):
                out[name] = row
    return out


def applied(c: LocalCluster, target: str, source: str) -> dict[str, Any] | None:
    """``target``'s record of how far it has applied ``source``'s feed (None: no record)."""
    got: dict[str, Any] | None = node_status(c.url(target))["applied"].get(source)
    return got


def last_versions(c: LocalCluster, names: list[str]) -> dict[str, int]:
    return {n: int(node_status(c.url(n))["last_version"]) for n in names}


def session_read(c: LocalCluster, node: str, key: str, token: str) -> int:
    """The status a pinned session read of ``key`` on ``node`` gets, not waiting at all."""
    headers = {"X-Dtm-Session": token, "X-Dtm-Wait": "0"}
    return request("GET", c.url(node) + f"/v1/kv/{key}", headers=headers).status


def test_the_handler_delivers_the_second_copy_with_the_sync_stopped(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(
        nodes=2,
        sections={
            # "refuse": a write whose second copy did not come would fail here.
            "handler": {
                "write_copies": 2,
                "copy_wait_ms": COPY_WAIT_MS,
                "copy_shortfall": "refuse",
            },
        },
    )
    start_without_sync(c)
    url = c.url("handler")
    written: list[tuple[str, str]] = []  # (the task's key, the create's session token)
    for i in range(6):
        made = request("POST", url + "/v1/tasks", {"text": f"pushed {i}"}, timeout=TIMEOUT_S)
        assert made.status == 201, made
        task = made.json()["id"]
        held = task_rows(c, task)  # at the moment of the answer, not later
        assert sorted(held) == c.node_names, held
        (one,) = set(held.values())  # the same write: hlc, origin, value, not re-stamped
        assert one[0] is False and f"pushed {i}" in one[3]
        written.append((f"{TEST_USER}.{task}", made.headers["x-dtm-session"]))
        if i % 2:
            changed = request(
                "PATCH", url + f"/v1/tasks/{task}", {"status": "complete"}, timeout=TIMEOUT_S
            )
            assert changed.status == 200, changed
            (row,) = set(task_rows(c, task).values())
            assert '"complete"' in row[3] and row[1] > one[1], row
        if i % 3 == 2:
            gone = request("DELETE", url + f"/v1/tasks/{task}", timeout=TIMEOUT_S)
            assert gone.status == 200, gone
            held = task_rows(c, task)
            assert sorted(held) == c.node_names and all(r[0] for r in held.values()), held

    # The pushes claimed nothing of the first node's feed: no node's record of another moved.
    a, b = c.node_names
    for target, source in ((a, b), (b, a)):
        record = applied(c, target, source)
        assert record is None or record["version"] == 0, (target, source, record)
    # So a session that created a task on one node is not served by the other one, which holds
    # the row but has not applied that node's feed up to it.
    for key, token in written:
        (origin,) = json.loads(token)["versions"]  # the node that took the create
        other = b if origin == a else a
        assert session_read(c, other, key, token) == 409, (key, origin)
        assert session_read(c, origin, key, token) in (200, 404)  # 404: deleted since

    # The sync, started now, finds every row where it belongs: its copies change nothing.
    before = {n: rows(c.url(n)) for n in c.node_names}
    versions = last_versions(c, c.node_names)
    c.start("sync")

    def fed() -> bool:
        for target, source in ((a, b), (b, a)):
            record = applied(c, target, source)
            if record is None or record["version"] < versions[source]:
                return False
        return True

    wait_until(fed, 20.0, 0.05, "the sync to apply each node's feed to the other")
    assert last_versions(c, c.node_names) == versions
    assert {n: rows(c.url(n)) for n in c.node_names} == before
    # And now the other node may serve those sessions: its record came from the sync.
    for key, token in written:
        (origin,) = json.loads(token)["versions"]
        other = b if origin == a else a
        assert session_read(c, other, key, token) in (200, 404), (key, origin)


def test_refusing_short_writes_needs_two_nodes_up_not_the_sync(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(
        nodes=3,
        sections={
            "balancer": {"health_interval_ms": 100, "health_fall": 1},
            "handler": {"write_copies": 2, "copy_wait_ms": 1000, "copy_shortfall": "refuse"},
        },
    )
    start_without_sync(c)
    url = c.url("handler")
    c.procs["store3"].stop()
    for i in range(4):
        made = request("POST", url + "/v1/tasks", {"text": f"two of three {i}"}, timeout=TIMEOUT_S)
        assert made.status == 201, made
        held = task_rows(c, made.json()["id"], ["store1", "store2"])
        assert sorted(held) == ["store1", "store2"], held
        assert len(set(held.values())) == 1, held

    # One node left: no second copy can be had, and the write is refused as maybe applied.
    c.procs["store2"].stop()
    wait_until(
        lambda: request("GET", url + "/v1/tasks", timeout=TIMEOUT_S).status == 200,
        20.0,
        0.1,
        "the balancer to send everything to store1",
    )
    refused = request("POST", url + "/v1/tasks", {"text": "one copy only"}, timeout=TIMEOUT_S)
    body = refused.json()
    assert refused.status == 502 and body["error"] == "ErrMaybeApplied", refused
    assert "may have been created" in body["message"], body


def test_copies_go_over_tls_with_the_handlers_certificate(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(
        nodes=2,
        tls=True,
        client_certs=True,
        sections={
            "handler": {"write_copies": 2, "copy_wait_ms": 2000, "copy_shortfall": "refuse"},
        },
    )
    start_without_sync(c)
    made = request("POST", c.url("handler") + "/v1/tasks", {"text": "over tls"}, timeout=TIMEOUT_S)
    assert made.status == 201, made
    held = task_rows(c, made.json()["id"])
    assert sorted(held) == c.node_names and len(set(held.values())) == 1, held
