"""A purge the sync sent while a node was down is finished on that node by the restarted sync.

The sync purged a tombstone on store1 and store2 while store3 was down, and was killed before
store3 came back: its feed was read past the tombstone, and the others no longer show it, so a
sync that forgot the purge leaves the tombstone on store3 until anti-entropy copies it back to
the others. The decided purge is in the sync's state file, so the restarted sync sends it to
store3 (anti-entropy is kept out of the way here: an hour apart)."""

from __future__ import annotations

from collections.abc import Callable

from syncutil import caught_up, converged, delete, node_status, put, rows, sync_status
from tests.harness import LocalCluster, wait_until


def test_a_purge_store3_missed_reaches_it_after_the_sync_restarts(
    cluster: Callable[..., LocalCluster],
) -> None:
    # A decided purge waits 4 call timeouts (2 s here) for batches read before it.
    sync_cfg = {"wait_ms": 200, "call_timeout_ms": 500, "anti_entropy_interval_ms": 3_600_000}
    c = cluster(nodes=3, sections={"sync": sync_cfg})
    c.start_nodes()
    c.start("sync")
    s1, s2, s3 = c.node_urls
    put(s1, "x", 1)
    converged(c)
    delete(s1, "x")
    wait_until(
        lambda: all(rows(u).get("x", (False,))[0] for u in (s1, s2, s3)),
        10,
        0.05,
        "every node to hold x's tombstone",
    )
    caught_up(c)

    def decided() -> bool:
        holds = sync_status(c)["purge_holds"]
        return any(h["key"] == "x" and "decided" in h["waiting_for"][0] for h in holds)

    wait_until(decided, 10, 0.02, "the purge of x to be decided")
    c.procs["store3"].stop()  # within the 2 s fence: the purge goes out to store1 and store2 only
    wait_until(
        lambda: all("x" not in rows(u) for u in (s1, s2)),
        15,
        0.05,
        "x's tombstone to be purged on store1 and store2",
    )
    c.procs["sync"].kill()
    c.start("store3")
    assert node_status(s3)["tombstones"] == 1
    c.start("sync")
    wait_until(
        lambda: node_status(s3)["tombstones"] == 0,
        15,
        0.05,
        "the restarted sync to purge x's tombstone on store3",
    )
    assert all("x" not in rows(u) for u in (s1, s2, s3))
