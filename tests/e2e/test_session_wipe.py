"""A session outlives a wiped cluster: its token names epochs that no longer exist anywhere, and
no replica can ever meet them; the handler takes each node's new epoch instead of answering
ErrNotCaughtUp forever (a user would otherwise have to delete the CLI's state file)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.harness import TEST_USER, LocalCluster, request, wait_until


def _start(c: LocalCluster) -> None:
    c.start_nodes()
    c.start("balancer")
    c.start("sync")
    c.start("handler")


def test_an_old_session_reads_a_wiped_cluster(cluster: Callable[..., LocalCluster]) -> None:
    c = cluster(nodes=2)
    _start(c)
    api = c.url("handler") + "/v1/tasks"
    r = request("POST", api, {"text": "before the wipe"})
    token = r.headers["x-dtm-session"]
    r = request("GET", api, headers={"X-Dtm-Session": token})
    assert r.status == 200
    token = r.headers["x-dtm-session"]
    old_epochs = json.loads(token)["epochs"]

    c.stop_all()
    shutil.rmtree(c.root / "data")
    _start(c)

    r = request("GET", api, headers={"X-Dtm-Session": token})
    assert r.status == 200, r
    assert r.json() == {"tasks": [], "next": None}
    new = json.loads(r.headers["x-dtm-session"])
    # every entry now names a node's new epoch (the read may have added another node's entry)
    assert set(old_epochs) <= set(new["epochs"])
    assert all(new["epochs"][n] != old_epochs.get(n) for n in new["epochs"])
    # and the session goes on as usual: read-your-writes with the new token
    r = request(
        "POST", api, {"text": "after"}, headers={"X-Dtm-Session": r.headers["x-dtm-session"]}
    )
    assert r.status == 201
    r = request("GET", api, headers={"X-Dtm-Session": r.headers["x-dtm-session"]})
    assert [item[1] for item in r.json()["tasks"]] == ["after"]  # items are [id, text, ...]


def _status(url: str) -> dict[str, Any]:
    body: dict[str, Any] = request("GET", f"{url}/v1/status").json()
    return body


def test_a_write_on_a_wiped_node_is_read_back_not_404_from_a_replica_of_its_old_epoch(
    cluster: Callable[..., LocalCluster],
) -> None:
    """store1 is wiped (new epoch) while store2 holds store1's OLD epoch's feed and the sync is
    stopped; a task created on the new store1 must read back through every path: store2 must
    answer ErrNotCaughtUp (never 404) for it, so the balancer moves on to store1."""
    c = cluster(nodes=2)
    _start(c)
    api = c.url("handler") + "/v1/tasks"
    s1, s2 = c.url("store1"), c.url("store2")
    for i in range(4):
        assert request("POST", api, {"text": f"old {i}"}).status == 201
    wait_until(
        lambda: (
            _status(s2)["applied"].get("store1", {}).get("version", -1)
            >= _status(s1)["last_version"]
            and _status(s1)["applied"].get("store2", {}).get("version", -1)
            >= _status(s2)["last_version"]
        ),
        10,
        0.05,
        "the sync to copy each node's feed to the other",
    )
    old_epoch = _status(s1)["epoch"]
    assert _status(s2)["applied"]["store1"]["version"] > 0
    c.procs["sync"].stop()
    c.procs["store1"].stop()
    (c.db_path("store1")).unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(c.db_path("store1")) + suffix).unlink(missing_ok=True)
    c.start("store1")
    new_epoch = _status(s1)["epoch"]
    assert new_epoch != old_epoch
    assert _status(s2)["applied"]["store1"]["epoch"] == old_epoch

    lb = c.url("balancer")
    wait_until(
        lambda: all(n["healthy"] for n in _status(lb)["nodes"]),
        10,
        0.05,
        "the balancer to take store1 back",
    )
    # A task acknowledged by the new store1 (the balancer spreads creates: keep the first).
    for _ in range(20):
        r = request("POST", api, {"text": "written after the wipe"})
        assert r.status == 201, r
        tok = json.loads(r.headers["x-dtm-session"])
        if set(tok["versions"]) == {"store1"}:
            break
    else:
        raise AssertionError("no create landed on store1")
    assert tok["epochs"]["store1"] == new_epoch
    token, task = r.headers["x-dtm-session"], r.json()

    # store2 itself: not caught up with the new epoch's write, whatever it holds of the old one.
    key = f"{TEST_USER}.{task['id']}"
    got = request("GET", f"{s2}/v1/kv/{key}", headers={"X-Dtm-Session": token})
    assert got.status == 409 and got.json()["error"] == "ErrNotCaughtUp", got
    # Through the handler, every read of the session finds its write.
    for _ in range(10):
        one = request("GET", f"{api}/{task['id']}", headers={"X-Dtm-Session": token})
        assert one.status == 200, one
        listed = request("GET", api, headers={"X-Dtm-Session": token})
        assert listed.status == 200, listed
        assert task["id"] in [item[0] for item in listed.json()["tasks"]]
