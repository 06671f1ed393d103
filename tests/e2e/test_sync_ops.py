"""The sync process in operation: clock skew, no echo after quiescence, anti-entropy (silent
when healthy, repairing what the cursor path missed), tombstone purge held back by a node that
is down and released by forgetting it, and its status endpoints' answers to garbage."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from syncutil import (
    Writers,
    caught_up,
    converged,
    delete,
    node_status,
    put,
    rows,
    sync_status,
)
from tests.harness import LocalCluster, request, wait_until

HOUR_MS = 3_600_000


@pytest.mark.parametrize("offset", [HOUR_MS, -HOUR_MS])
def test_sequential_writes_through_skewed_nodes_apply_in_order(
    cluster: Callable[..., LocalCluster], offset: int
) -> None:
    # Skewed by an hour, within a max offset of two: the rule admits the stamps, order survives.
    wide = {"max_clock_offset_ms": 2 * HOUR_MS}
    c = cluster(
        nodes=2, node_options={"store1": {"clock_offset_ms": offset, **wide}, "store2": wide}
    )
    c.start_nodes()
    c.start("sync")
    seen = 0
    for i in range(12):
        url = c.node_urls[i % 2]
        row = put(url, "doc", {"step": i}, seen_hlc=seen)
        assert row["hlc"] > seen
        seen = row["hlc"]
    got = converged(c)
    assert got["doc"][1:] == ("store2", json.dumps({"step": 11}))


def test_no_echo_after_quiescence_and_healthy_anti_entropy(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=3, sections={"sync": {"wait_ms": 100, "anti_entropy_interval_ms": 300}})
    c.start_nodes()
    c.start("sync")
    w = Writers(c.node_urls)
    try:
        w.run_for(0.5)
    finally:
        w.close()
    converged(c)
    caught_up(c)
    before = sync_status(c)
    versions = {u: node_status(u)["last_version"] for u in c.node_urls}

    prev_ae = before["anti_entropy"]["at_ms"] if before["anti_entropy"] else 0

    def ten_more_rounds() -> dict[str, Any]:
        st = sync_status(c)
        done = all(st["rounds"][n] >= before["rounds"][n] + 10 for n in c.node_names)
        ae = st["anti_entropy"]
        return st if done and ae and ae["at_ms"] > prev_ae else {}

    after = wait_until(ten_more_rounds, 20, 0.05, "ten more sync rounds")

    def sent(st: dict[str, Any]) -> dict[tuple[str, str], int]:
        return {(p["source"], p["target"]): p["rows_sent"] for p in st["pairs"]}

    assert sent(after) == sent(before)
    assert {u: node_status(u)["last_version"] for u in c.node_urls} == versions
    ae = after["anti_entropy"]
    assert ae["error"] is None and ae["differing_buckets"] == 0 and ae["rows_repaired"] == 0


def test_anti_entropy_repairs_what_the_cursor_path_missed(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=2, sections={"sync": {"wait_ms": 200, "anti_entropy_interval_ms": 400}})
    c.start_nodes()
    sync = c.start("sync")
    s1, s2 = c.node_urls
    put(s1, "seen", 1)
    caught_up(c)
    sync.stop()
    hidden = put(s1, "hidden", "only on store1")
    # Pretend store2 already applied store1's feed up to now: the cursor path will skip "hidden".
    state_path = c.root / "data" / "sync.state.json"
    state = json.loads(state_path.read_text())
    for cur in state["cursors"]:
        if (cur["source"], cur["target"]) == ("store1", "store2"):
            cur["version"] = hidden["version"]
    state_path.write_text(json.dumps(state))
    c.start("sync")

    def repaired() -> bool:
        ae = sync_status(c)["anti_entropy"]
        return bool(ae) and ae["rows_repaired"] >= 1

    wait_until(repaired, 15, 0.05, "anti-entropy to repair the missed row")
    assert rows(s2)["hidden"][1:3] == (hidden["hlc"], "store1")
    assert converged(c)["hidden"][0] == hidden["hlc"]


def test_tombstones_purged_only_when_every_node_has_them(
    cluster: Callable[..., LocalCluster],
) -> None:
    # A decided purge waits 4 call timeouts (2 s here) for batches read before it.
    c = cluster(nodes=3, sections={"sync": {"wait_ms": 200, "call_timeout_ms": 500}})
    c.start_nodes()
    c.start("sync")
    s1, s2, s3 = c.node_urls
    put(s1, "x", 1)
    put(s1, "y", 2)
    converged(c)
    caught_up(c)

    c.procs["store3"].stop()
    delete(s1, "x")
    wait_until(lambda: rows(s2).get("x", (False,))[0], 10, what="store2 to hold x's tombstone")

    def held_by_store3() -> list[dict[str, object]]:
        return [
            h
            for h in sync_status(c)["purge_holds"]
            if h["key"] == "x" and any("store3" in r for r in h["waiting_for"])
        ]

    wait_until(held_by_store3, 10, 0.05, "the status to say store3 holds the purge back")
    assert node_status(s1)["tombstones"] == 1
    assert node_status(s2)["tombstones"] == 1

    c.start("store3")
    wait_until(
        lambda: all(node_status(u)["tombstones"] == 0 for u in (s1, s2, s3)),
        15,
        0.05,
        "x's tombstone to be purged on every node",
    )
    assert all("x" not in rows(u) for u in (s1, s2, s3))

    # A node removed for good no longer holds purges back.
    c.procs["store3"].stop()
    delete(s1, "y")
    wait_until(lambda: rows(s2).get("y", (False,))[0], 10, what="store2 to hold y's tombstone")
    wait_until(lambda: sync_status(c)["tombstones_awaiting_purge"] >= 1, 10, what="a hold")
    assert node_status(s1)["tombstones"] == 1
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "dtm.run",
            "sync",
            "forget",
            "--config",
            str(c.config_path),
            "store3",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert sync_status(c)["forgotten"] == ["store3"]
    wait_until(
        lambda: node_status(s1)["tombstones"] == 0 and node_status(s2)["tombstones"] == 0,
        15,
        0.05,
        "y's tombstone to be purged without store3",
    )


def test_status_endpoints_and_garbage(cluster: Callable[..., LocalCluster]) -> None:
    c = cluster(nodes=2)
    c.start_nodes()
    c.start("sync")
    base = c.url("sync")
    h = request("GET", base + "/healthz").json()
    assert h["status"] == "ok" and h["component"] == "sync"
    m = request("GET", base + "/metrics")
    assert m.status == 200 and b"dtm_sync_lag_versions" in m.body
    assert request("GET", base + "/v1/conflicts").json() == {"total": 0, "conflicts": []}
    cases = [
        ("GET", "/v1/nope", None, 404, "ErrNoDataFound"),
        ("POST", "/v1/status", None, 405, "ErrSyntaxInvalidArgs"),
        ("POST", "/v1/forget", b"not json", 400, "ErrSyntaxInvalidArgs"),
        ("POST", "/v1/forget", b'{"node": 3}', 400, "ErrSyntaxInvalidArgs"),
        ("POST", "/v1/forget", b'{"node": "store9"}', 404, "ErrNoDataFound"),
        ("POST", "/v1/forget", b'{"node": "' + b"x" * 10000 + b'"}', 413, "ErrPayloadTooLarge"),
    ]
    for method, path, body, status, name in cases:
        r = request(method, base + path, body)
        assert r.status == status, (path, body, r)
        assert r.json()["error"] == name, r
    assert sync_status(c)["forgotten"] == []
    view = subprocess.run(
        [sys.executable, "-m", "dtm.cli.cluster_status", "--config", str(c.config_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert view.returncode == 0, view.stderr
    assert "store1 -> store2" in view.stdout and "anti-entropy" in view.stdout
