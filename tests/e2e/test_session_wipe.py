"""A session outlives a wiped cluster: its token names epochs that no longer exist anywhere, and
no replica can ever meet them; the handler takes each node's new epoch instead of answering
ErrNotCaughtUp forever (a user would otherwise have to delete the CLI's state file)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable

from harness import LocalCluster, request


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
    assert set(new["epochs"]) <= set(old_epochs)
    assert all(new["epochs"][n] != old_epochs[n] for n in new["epochs"])
    # and the session goes on as usual: read-your-writes with the new token
    r = request(
        "POST", api, {"text": "after"}, headers={"X-Dtm-Session": r.headers["x-dtm-session"]}
    )
    assert r.status == 201
    r = request("GET", api, headers={"X-Dtm-Session": r.headers["x-dtm-session"]})
    assert [item[1] for item in r.json()["tasks"]] == ["after"]  # items are [id, text, ...]
