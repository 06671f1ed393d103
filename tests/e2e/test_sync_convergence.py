"""Convergence under trouble, end to end: concurrent writes on both nodes while the sync process
is paused, killed and restarted and a data node is killed and restarted; writes landing between
two polls (interval mode); two sync processes at once; a wiped node refilling completely."""

from __future__ import annotations

import signal
from collections.abc import Callable

from syncutil import Writers, caught_up, converged, live, node_status, oracle, put
from tests.harness import LocalCluster, free_port, request, wait_until

FAST = {"wait_ms": 300, "anti_entropy_interval_ms": 600000}


def test_chaos_converges_to_last_acknowledged_writes(cluster: Callable[..., LocalCluster]) -> None:
    c = cluster(nodes=2, sections={"sync": FAST})
    c.start_nodes()
    sync = c.start("sync")
    w = Writers(c.node_urls)
    try:
        w.run_for(0.5)
        sync.signal(signal.SIGSTOP)
        w.run_for(0.5)  # both nodes change the same keys between two polls
        sync.signal(signal.SIGCONT)
        w.run_for(0.3)
        sync.kill()  # SIGKILL mid-stream: only its saved cursors survive
        w.run_for(0.5)
        c.start("sync")
        w.run_for(0.3)
        c.procs["store2"].kill()  # a data node dies (writers paused: every ack is durable)
        w.run_for(0.3)
        c.start("store2")
        w.run_for(0.5)
    finally:
        w.close()
    got = converged(c)
    want = oracle(w.acked)
    assert got == want
    deleted = {r["key"] for r in w.acked} - set(want)
    for url in c.node_urls:
        assert not deleted & set(live(url)), "a deleted key reappeared"
    assert len(w.acked) > 50


def test_writes_between_polls_all_replicated(cluster: Callable[..., LocalCluster]) -> None:
    c = cluster(nodes=2, sections={"sync": FAST})
    c.start_nodes()
    c.start("sync", "--interval", "300")
    assert request("GET", c.url("sync") + "/v1/status").json()["mode"] == "interval"
    w = Writers(c.node_urls, keys=400)
    try:
        w.run_for(1.0)  # several polls' worth of writes, many landing between two polls
    finally:
        w.close()
    assert converged(c) == oracle(w.acked)


def test_two_sync_processes_at_once(cluster: Callable[..., LocalCluster]) -> None:
    c = cluster(nodes=3, sections={"sync": FAST})
    c.start_nodes()
    c.start("sync")
    port = free_port()
    second = c.start(
        "sync",
        "--port",
        str(port),
        "--state",
        str(c.root / "data" / "sync2.state.json"),
        wait=False,
    )
    url2 = f"http://127.0.0.1:{port}"
    wait_until(lambda: request("GET", url2 + "/healthz").status == 200, 15, what="second sync")
    assert second.alive()
    w = Writers(c.node_urls)
    try:
        w.run_for(1.0)
    finally:
        w.close()
    assert converged(c) == oracle(w.acked)
    caught_up(c, url2)


def test_wiped_node_refills_completely(cluster: Callable[..., LocalCluster]) -> None:
    c = cluster(nodes=2, sections={"sync": {**FAST, "batch": 250}})
    c.start_nodes()
    c.start("sync")
    s2 = c.node_urls[1]
    w = Writers(c.node_urls, keys=1500)

    def touched() -> bool:  # writes until 400 keys were written, however slow the machine
        w.run_for(0.5)
        return len({r["key"] for r in w.acked}) >= 400

    try:
        wait_until(touched, 120, 0, "writers to write 400 keys")
    finally:
        w.close()
    before = converged(c)
    assert len(before) > 200
    old_epoch = node_status(s2)["epoch"]
    c.procs["store2"].stop()
    for suffix in ("", "-wal", "-shm"):
        p = c.db_path("store2").with_name(c.db_path("store2").name + suffix)
        p.unlink(missing_ok=True)
    c.start("store2")
    assert node_status(s2)["epoch"] != old_epoch
    put(s2, "after-wipe", "new")  # its own new changes are still taken from it
    after = converged(c)
    assert set(after) == set(before) | {"after-wipe"}
    assert {k: v for k, v in after.items() if k != "after-wipe"} == before
