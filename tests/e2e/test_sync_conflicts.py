"""The spec's conflict example, end to end: task 100 updated on store1 and deleted on store2
between two polls (the sync process is SIGSTOPped meanwhile), in both orders and with both writes
in the same millisecond. Both nodes end with the later write; the conflict log names the loser."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest
from syncutil import caught_up, delete, put, rows
from tests.harness import LocalCluster, request, wait_until

KEY = "100"


@pytest.mark.parametrize("order", ["update-then-delete", "delete-then-update", "same-ms"])
def test_spec_conflict_example(cluster: Callable[..., LocalCluster], order: str) -> None:
    # same-ms sends a stamp 5 s ahead to both nodes: within a max offset wide enough to admit it
    wide = {n: {"max_clock_offset_ms": 10_000} for n in ("store1", "store2")}
    opts = wide if order == "same-ms" else {}
    c = cluster(nodes=2, sections={"sync": {"wait_ms": 500}}, node_options=opts)
    c.start_nodes()
    sync = c.start("sync")
    s1, s2 = c.node_urls
    put(s1, KEY, {"text": "Buy groceries", "status": "open"})
    caught_up(c)
    wait_until(lambda: KEY in rows(s2), 10, what="task 100 on store2")

    sync.signal(signal.SIGSTOP)
    try:
        update = {"text": "Buy groceries", "status": "complete"}
        if order == "update-then-delete":
            u = put(s1, KEY, update)
            d = delete(s2, KEY)
        elif order == "delete-then-update":
            d = delete(s2, KEY)
            u = put(s1, KEY, update)
        else:
            # Both nodes observe the same future stamp first, so both writes get the same HLC
            # (the same millisecond, the same logical count): the origin breaks the tie.
            ahead = u0 = put(s1, "clock", 0)["hlc"] + (5_000 << 16)
            u = put(s1, KEY, update, seen_hlc=ahead)
            d = delete(s2, KEY, seen_hlc=ahead)
            assert u["hlc"] == d["hlc"] == ahead + 1, (u0, u, d)
        assert d is not None
    finally:
        sync.signal(signal.SIGCONT)

    later, earlier = (u, d) if (u["hlc"], u["origin"]) > (d["hlc"], d["origin"]) else (d, u)
    if order == "update-then-delete":
        assert later is d
    elif order == "delete-then-update":
        assert later is u
    else:
        assert later is d  # "store2" > "store1"

    def both_hold_later() -> bool:
        for url in (s1, s2):
            got = rows(url).get(KEY)
            if later["deleted"]:
                # The tombstone may already be purged everywhere: absent is right too.
                if got is not None and (got[0], got[1], got[2]) != (True, d["hlc"], d["origin"]):
                    return False
                if request("GET", f"{url}/v1/kv/{KEY}").status != 404:
                    return False
            elif got is None or (got[0], got[1], got[2]) != (False, u["hlc"], u["origin"]):
                return False
        return True

    wait_until(both_hold_later, 15, 0.05, "both nodes to hold the later write")
    if not later["deleted"]:
        assert request("GET", f"{s2}/v1/kv/{KEY}").json()["value"]["status"] == "complete"

    def logged() -> list[dict[str, object]]:
        log = request("GET", c.url("sync") + "/v1/conflicts").json()
        return [e for e in log["conflicts"] if e["key"] == KEY]

    entries = wait_until(logged, 10, 0.05, "the conflict log to show the loser")
    assert len(entries) == 1, entries
    e = entries[0]
    assert (e["winner"]["hlc"], e["winner"]["origin"]) == (later["hlc"], later["origin"])
    assert (e["loser"]["hlc"], e["loser"]["origin"]) == (earlier["hlc"], earlier["origin"])
    assert e["loser"]["deleted"] == earlier["deleted"]
    assert request("GET", c.url("sync") + "/v1/status").json()["conflicts"] >= 1
