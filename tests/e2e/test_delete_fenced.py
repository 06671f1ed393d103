"""A delete whose node is clock-fenced goes to an unfenced node that holds the task.

The session read is served by the only node that covers the session, and that node's clock has
gone off (fenced: it refuses client writes). The balancer cannot help with the session's token
(the other node has not applied the session's last write: the sync is stopped), so the handler
sends the DELETE pinned to the unfenced node, carrying the session's HLC: its tombstone orders
after what the session saw, and wins everywhere once the sync runs again.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from syncutil import fenced, rows
from tests.harness import LocalCluster, wait_until
from tests.sessions import Session

PIN = "X-Dtm-Node"


def row_of(url: str, task_id: str) -> tuple[bool, int, str, str] | None:
    return next((r for k, r in rows(url).items() if k.endswith(task_id)), None)


def test_a_delete_read_on_a_fenced_node_is_taken_by_an_unfenced_one(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=2)
    c.start_nodes()
    for s in ("sync", "balancer", "handler"):
        c.start(s)
    url1, url2 = c.node_urls
    me = Session(c.url("handler"))
    made = me.call("POST", "/v1/tasks", {"text": "to be deleted"})
    assert made.status == 201, made
    task = made.json()["id"]
    wait_until(lambda: row_of(url1, task) and row_of(url2, task), 15, 0.05, "both nodes to hold it")

    # No sync from here on; a write on store1 that store2 never sees puts store1 in the token.
    c.procs["sync"].stop()
    other = me.call("POST", "/v1/tasks", {"text": "only on store1"}, headers={PIN: "store1"})
    assert other.status == 201, other
    assert "store1" in json.loads(me.token)["versions"]

    # store1's clock goes 30 s slow: it fences itself and refuses client writes.
    c.node_options = {"store1": {"clock_offset_ms": -30_000}}
    c.write_config()
    c.restart("store1")
    wait_until(lambda: fenced(url1), 20, 0.1, "store1 to fence itself")

    gone = me.call("DELETE", f"/v1/tasks/{task}")
    assert gone.status == 200, gone
    deleted, *_ = row_of(url2, task) or (False,)
    assert deleted, "store2 took the tombstone"
    # the session reads its own delete (store1 still holds the task live: the merge orders it)
    assert me.call("GET", f"/v1/tasks/{task}").status == 404

    # clock fixed and the sync back: the tombstone wins on store1 too
    c.node_options = {}
    c.write_config()
    c.restart("store1")
    c.start("sync")
    wait_until(lambda: (row_of(url1, task) or (False,))[0], 20, 0.1, "store1 to take the delete")


def test_a_delete_the_client_pinned_to_a_fenced_node_is_refused_there(
    cluster: Callable[..., LocalCluster],
) -> None:
    # 30 s fast: it still applies the rows of its peers (they are behind it), but is fenced
    c = cluster(nodes=2, node_options={"store1": {"clock_offset_ms": 30_000}})
    c.start_nodes()
    for s in ("sync", "balancer", "handler"):
        c.start(s)
    url1, url2 = c.node_urls
    wait_until(lambda: fenced(url1), 20, 0.1, "store1 to fence itself")
    me = Session(c.url("handler"))
    made = me.call("POST", "/v1/tasks", {"text": "pinned"})
    assert made.status == 201, made
    task = made.json()["id"]
    wait_until(lambda: row_of(url1, task), 15, 0.05, "store1 to receive it")
    refused = me.call("DELETE", f"/v1/tasks/{task}", headers={PIN: "store1"})
    assert refused.status == 503 and refused.json()["error"] == "ErrClockSkew", refused
    assert not (row_of(url2, task) or (True,))[0], "nothing was deleted elsewhere"
