"""`[handler] write_copies = 2`: a write is acknowledged only once a second node holds it, so the
loss of the node that took it (a wipe right after the answer) cannot lose it.

The sync runs in interval mode, 300 ms between polls, so that with one copy the other node is
nearly always without the write when the answer comes; with two, it always has it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from syncutil import rows
from tests.harness import LocalCluster, request

COPY_WAIT_MS = 3000


def holders(c: LocalCluster, task_id: str) -> list[str]:
    return [n for n, url in zip(c.node_names, c.node_urls, strict=True) if _has(url, task_id)]


def _has(url: str, task_id: str) -> bool:
    return any(k.endswith(task_id) for k in rows(url))


def short_of_copies(c: LocalCluster) -> float:
    text = request("GET", c.url("handler") + "/metrics").body.decode()
    m = re.search(r"^dtm_handler_writes_short_of_copies_total (\S+)$", text, re.M)
    assert m is not None, text
    return float(m.group(1))


def start(c: LocalCluster) -> None:
    c.start_nodes()
    for s in ("sync", "balancer", "handler"):
        c.start(s)


def test_with_two_copies_the_other_node_holds_every_acknowledged_write(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(
        nodes=2,
        sections={
            "sync": {"mode": "interval", "interval_ms": 300},
            "handler": {"write_copies": 2, "copy_wait_ms": COPY_WAIT_MS},
        },
    )
    start(c)
    url = c.url("handler")
    for i in range(6):
        made = request("POST", url + "/v1/tasks", {"text": f"kept {i}"})
        assert made.status == 201, made
        task = made.json()["id"]
        assert holders(c, task) == c.node_names  # at the moment of the answer, not later
        changed = request("PATCH", url + f"/v1/tasks/{task}", {"status": "complete"})
        assert changed.status == 200, changed
        for node_url in c.node_urls:
            (row,) = [v for k, v in rows(node_url).items() if k.endswith(task)]
            assert '"complete"' in row[3], (node_url, row)
        if i % 2:
            assert request("DELETE", url + f"/v1/tasks/{task}").status == 200
            for node_url in c.node_urls:
                (row,) = [v for k, v in rows(node_url).items() if k.endswith(task)]
                assert row[0], (node_url, "holds the tombstone")
    assert short_of_copies(c) == 0

    # The other node down: the second copy cannot come; the write stands, and is counted.
    c.procs["sync"].stop()
    c.procs["store2"].stop()
    made = request(
        "POST", url + "/v1/tasks", {"text": "one copy only"}, timeout=COPY_WAIT_MS / 1000 + 10
    )
    assert made.status == 201, made
    assert _has(c.url("store1"), made.json()["id"])
    assert short_of_copies(c) == 1


def test_with_one_copy_the_answer_does_not_wait_for_the_sync(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=2, sections={"sync": {"mode": "interval", "interval_ms": 300}})
    start(c)
    url = c.url("handler")
    alone = 0
    for i in range(6):
        made = request("POST", url + "/v1/tasks", {"text": f"fast {i}"})
        assert made.status == 201, made
        alone += len(holders(c, made.json()["id"])) == 1
    assert alone >= 1  # the sync had not copied it yet: what write_copies = 2 closes
    assert short_of_copies(c) == 0


def test_refusing_a_short_write_says_it_may_have_been_applied(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(
        nodes=2,
        sections={
            "handler": {"write_copies": 2, "copy_wait_ms": 500, "copy_shortfall": "refuse"},
        },
    )
    start(c)
    url = c.url("handler")
    made = request("POST", url + "/v1/tasks", {"text": "two copies"})
    assert made.status == 201, made
    assert holders(c, made.json()["id"]) == c.node_names
    c.procs["store2"].stop()
    refused = request("POST", url + "/v1/tasks", {"text": "one copy only"})
    body = refused.json()
    assert refused.status == 502 and body["error"] == "ErrMaybeApplied", refused
    assert "may have been created" in body["message"], body
    assert "are the other nodes down, or cut off from this handler?" in body["message"], body
    assert short_of_copies(c) == 1
