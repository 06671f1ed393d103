"""The sync's log is readable: a clean start says nothing above INFO, each replicated batch is one
INFO line (source -> target, rows, version range), and a sync process that was itself frozen
does not blame the nodes for the calls that timed out meanwhile."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable

from syncutil import caught_up, converged, put
from tests.harness import LocalCluster, wait_until

LEVEL = re.compile(r"^\S+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


def lines(c: LocalCluster) -> list[str]:
    return c.procs["sync"].log_path.read_text().splitlines()


def test_clean_start_is_quiet_and_each_batch_is_one_info_line(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=2)
    c.start_nodes()
    c.start("sync")
    s1, _ = c.node_urls
    row = put(s1, "k1", {"v": 1})
    converged(c)
    caught_up(c)
    want = f"replicated store1 -> store2: 1 rows, versions {row['version']}..{row['version']}"
    wait_until(lambda: any(want in x for x in lines(c)), 10, what="the batch's log line")
    loud = [x for x in lines(c) if (m := LEVEL.match(x)) and m.group(1) != "INFO"]
    assert loud == [], loud
    batches = [x for x in lines(c) if "replicated " in x]
    assert len(batches) == 1, batches  # no echo batch back to store1


def test_a_frozen_sync_does_not_blame_the_nodes(cluster: Callable[..., LocalCluster]) -> None:
    # Calls time out after 0.3 s (+ a 0.2 s long-poll wait); the sync is frozen for 1.5 s.
    c = cluster(nodes=2, sections={"sync": {"call_timeout_ms": 300, "wait_ms": 200}})
    c.start_nodes()
    sync = c.start("sync")
    caught_up_put = put(c.node_urls[0], "k0", 0)
    converged(c)
    sync.signal(signal.SIGSTOP)
    try:
        time.sleep(1.5)  # the fault being injected: a frozen process, not a wait for a condition
    finally:
        sync.signal(signal.SIGCONT)
    put(c.node_urls[1], "k1", 1)
    got = converged(c)
    assert "k1" in got and caught_up_put["key"] == "k0"
    wait_until(lambda: any("did not run for" in x for x in lines(c)), 10, what="the pause noted")
    blamed = [x for x in lines(c) if "WARNING" in x and "failed" in x]
    assert blamed == [], blamed


def test_a_sync_started_before_its_nodes_logs_nothing_above_info(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=2)
    c.start("sync")  # as `make up` may: the nodes are not listening yet
    c.start_nodes()
    put(c.node_urls[0], "k1", 1)
    converged(c)
    caught_up(c)
    assert any("is reachable now" in x for x in lines(c)) or not any(
        "failed" in x for x in lines(c)
    )
    loud = [x for x in lines(c) if (m := LEVEL.match(x)) and m.group(1) != "INFO"]
    assert loud == [], loud
