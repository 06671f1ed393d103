"""The conflict log survives a sync restart and says what was lost: the spec's conflict (task
100 updated on store1, deleted on store2 while the sync is paused), read back after a restart
from the sync's `/v1/conflicts`, with both writes' values, origins, stamps and wall times."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

from syncutil import caught_up, delete, put, rows
from tests.harness import LocalCluster, request, wait_until

KEY = "100"


def test_conflict_log_survives_a_sync_restart_and_says_what_was_lost(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=2, sections={"sync": {"wait_ms": 500}})
    c.start_nodes()
    sync = c.start("sync")
    s1, s2 = c.node_urls
    put(s1, KEY, {"text": "Buy groceries", "status": "open"})
    caught_up(c)
    wait_until(lambda: KEY in rows(s2), 10, what="task 100 on store2")
    sync.signal(signal.SIGSTOP)
    try:
        u = put(s1, KEY, {"text": "Buy groceries", "status": "complete"})
        d = delete(s2, KEY)
        assert d is not None
    finally:
        sync.signal(signal.SIGCONT)
    base = c.url("sync") + "/v1/conflicts"

    def logged() -> list[dict[str, Any]]:
        return [e for e in request("GET", base).json()["conflicts"] if e["key"] == KEY]

    (e,) = wait_until(logged, 10, 0.05, "the conflict to be logged")
    assert e["winner"] == {
        "value": None,
        "deleted": True,
        "hlc": d["hlc"],
        "wall_ms": d["hlc"] >> 16,
        "origin": "store2",
    }
    assert e["loser"] == {
        "value": {"text": "Buy groceries", "status": "complete"},
        "deleted": False,
        "hlc": u["hlc"],
        "wall_ms": u["hlc"] >> 16,
        "origin": "store1",
    }
    assert e["node"] in ("store1", "store2") and e["seq"] >= 1 and e["at_ms"] > 0

    c.restart("sync")
    after = request("GET", base).json()
    assert [x for x in after["conflicts"] if x["key"] == KEY] == [e]
    assert after["total"] >= 1
    assert request("GET", c.url("sync") + "/v1/status").json()["conflicts"] == after["total"]
    assert request("GET", base + "?limit=0").json() == {"total": after["total"], "conflicts": []}
    bad = request("GET", base + "?limit=many")
    assert bad.status == 400 and bad.json()["error"] == "ErrSyntaxInvalidArgs"
    assert request("GET", base, auth=False).status == 401
