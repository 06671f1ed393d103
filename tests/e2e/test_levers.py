"""The fault levers and the `todo cluster` views against a real cluster under supervisord.

One cluster (two nodes and the sync) per test: pause the sync and make the spec's conflict on
two nodes, resume and read it with `todo cluster conflicts` and `inspect`; stop a node and see it
stay down; wipe a node and see it refill under a new epoch; skew a clock past the fence and back.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from runcluster import RunCluster, run_cluster
from tests.harness import request, wait_until

__all__ = ["run_cluster"]

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc"),
]


def todo(c: RunCluster, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "dtm.cli.main", *args, "--config", str(c.run.config)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=c.env())


def frozen(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "T"


def put(c: RunCluster, node: str, key: str, value: object) -> dict[str, object]:
    got = request("PUT", c.url(node) + "/v1/kv/" + key, {"value": value})
    assert got.status == 200, got
    data: dict[str, object] = got.json()
    return data


def test_pause_makes_the_conflict_and_the_views_explain_it(run_cluster: RunCluster) -> None:
    c = run_cluster
    c.write_config()
    c.up("--components", "nodes,sync")
    task = {"text": "Buy groceries", "status": "open", "created": "x", "updated": "x"}
    put(c, "store1", "local.100abcdefghj", task)
    c.wait_row("store2", "local.100abcdefghj", "the first write to reach store2")

    out = c.ok("pause", "sync")
    assert "paused sync" in out and "dtm cluster resume sync" in out
    pid = c.pid("sync")
    assert frozen(pid) and c.state("sync") == "RUNNING"  # supervisord sees nothing wrong

    put(c, "store1", "local.100abcdefghj", {**task, "status": "complete"})
    gone = request("DELETE", c.url("store2") + "/v1/kv/local.100abcdefghj")
    assert gone.status == 200, gone
    assert frozen(pid) and c.pid("sync") == pid  # still the same frozen process

    assert "resumed sync" in c.ok("resume", "sync")
    assert "not paused" in c.ok("resume", "sync")
    wait_until(
        lambda: request("GET", c.url("sync") + "/v1/conflicts").json()["conflicts"],
        timeout=30,
        what="the sync to log the conflict",
    )
    shown = todo(c, "cluster", "conflicts", "--limit", "5")
    assert shown.returncode == 0, shown.stderr
    assert "local.100abcdefghj" in shown.stdout and "winner: deleted" in shown.stdout
    assert "lost:   the change made on store1 was lost" in shown.stdout, shown.stdout
    as_json = json.loads(todo(c, "--json", "cluster", "conflicts").stdout)
    assert as_json["conflicts"][0]["loser"]["origin"] == "store1"

    def agreed() -> dict[str, object] | None:
        got = todo(c, "cluster", "inspect", "100abcde", "--json")
        body: dict[str, object] = json.loads(got.stdout)
        return body if body["same"] else None

    body = wait_until(agreed, timeout=30, what="both nodes to hold the delete")
    nodes = body["nodes"]
    assert isinstance(nodes, dict) and all(r["deleted"] for r in nodes.values())
    text = todo(c, "cluster", "inspect", "100abcde").stdout
    assert "deleted (a tombstone)" in text and "every node has the same write" in text

    status = todo(c, "cluster", "status")
    assert status.returncode == 0, status.stderr
    assert "store1 -> store2" in status.stdout and "conflicts: 1" in status.stdout
    st = json.loads(todo(c, "cluster", "status", "--json").stdout)
    assert set(st["nodes"]) == {"store1", "store2"} and st["sync"]["conflicts"] == 1


def test_watch_redraws_until_ctrl_c_and_leaves_cleanly(run_cluster: RunCluster) -> None:
    c = run_cluster
    c.write_config()
    c.up("--components", "nodes,sync")
    argv = [sys.executable, "-m", "dtm.cli.main", "cluster", "status", "--watch", "--every",
            "0.2", "--config", str(c.run.config)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=c.env())
    try:
        assert proc.stdout is not None
        seen = b""
        while seen.count(b"\x1b[H\x1b[2J") < 3:  # three frames, each drawn over the last
            chunk = proc.stdout.read1(65536)
            assert chunk, proc.stderr.read() if proc.stderr else b""
            seen += chunk
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0 and b"Traceback" not in err, err
    assert b"store1 -> store2" in seen and b"(Ctrl-C to leave)" in seen


def test_stop_start_wipe_and_skew(run_cluster: RunCluster) -> None:
    c = run_cluster
    c.write_config()
    c.up("--components", "nodes,sync")
    put(c, "store1", "kept", {"n": 1})
    c.wait_row("store2", "kept", "the write to reach store2")

    out = c.ok("stop", "store2")
    assert "stays down" in out and "dtm cluster start store2" in out
    assert c.state("store2") == "STOPPED"
    # the sync notices store2 is gone; supervisord has had time to restart it and has not
    wait_until(
        lambda: request("GET", c.url("sync") + "/v1/status").json()["errors"].get("store2"),
        timeout=30,
        what="the sync to see store2 down",
    )
    assert c.state("store2") == "STOPPED"
    assert "started store2" in c.ok("start", "store2")

    epoch = c.node_status("store2")["epoch"]
    out = c.ok("wipe", "store2")
    assert f"it was epoch {epoch}" in out and "No undo" in out
    assert c.node_status("store2")["epoch"] != epoch
    c.wait_row("store2", "kept", "the wiped node to refill")

    out = c.ok("skew", "store1", "+3000")
    assert "+3000 ms" in out and "fences" in out and "dtm cluster skew store1 0" in out
    assert "clock_offset_ms = 3000" in c.run.config.read_text()
    wait_until(lambda: c.node_status("store1")["fenced"], timeout=30, what="store1 to fence")
    c.ok("skew", "store1", "0")
    assert "clock_offset_ms" not in c.run.config.read_text()
    wait_until(lambda: not c.node_status("store1")["fenced"], timeout=30, what="store1 to unfence")

    refused = c.dtm("partition", "store1", "store2")
    assert refused.returncode == 6 and "loopback" in refused.stderr, refused.stderr
    unknown = c.dtm("pause", "store9")
    assert unknown.returncode == 2 and "ErrSyntaxInvalidArgs" in unknown.stderr

    # `down` with a paused node thaws it first: it stops cleanly, not by SIGKILL
    c.ok("pause", "store2")
    log = c.run.log_of("store2")
    before = log.read_text().count("node store2 stopped at version")
    assert "stopped" in c.ok("down")
    assert log.read_text().count("node store2 stopped at version") == before + 1


def test_a_clean_start_logs_nothing_above_info(run_cluster: RunCluster) -> None:
    c = run_cluster
    c.write_config(view=True)
    res = c.dtm("up")
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert "view" in res.stdout  # the table lists the live view's address
    for name in ("store1", "store2", "balancer", "handler", "view"):
        text = c.run.log_of(name).read_text()
        loud = [ln for ln in text.splitlines() if " WARNING " in ln or " ERROR " in ln]
        assert loud == [], (name, loud)
        assert " INFO " in text, (name, text)
    # a fault and its recovery, once the node had answered, are WARNINGs
    balancer = c.run.log_of("balancer")
    # (a node the balancer has not yet heard from is only starting: its loss would be INFO)
    heard = "store2 (http://"

    def store2_heard() -> bool:
        return any(heard in ln and "answers: in rotation" in ln for ln in balancer.open())

    wait_until(store2_heard, timeout=30, what="the balancer to hear from store2")
    c.ok("stop", "store2")
    wait_until(lambda: "WARNING balancer dtm.balancer: ejected store2" in balancer.read_text(),
               timeout=30, what="the balancer to warn that store2 is gone")  # fmt: skip
    c.ok("start", "store2")
    wait_until(lambda: "WARNING balancer dtm.balancer: readmitted store2" in balancer.read_text(),
               timeout=30, what="the balancer to warn that store2 is back")  # fmt: skip
