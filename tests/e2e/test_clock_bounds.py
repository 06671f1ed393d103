"""Clocks no request can poison: stamps beyond the max offset are never merged or stored, rows a
little ahead are held back and applied once clocks allow, and a node whose clock is far off is
fenced (503 ErrClockSkew on client writes) until it is fixed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from syncutil import fenced, node_status, put, rows
from tests.harness import LocalCluster, Response, request, wait_until

MAX_STAMP = 2**63 - 1
MAX_OFFSET_MS = 500


EPOCH = "e9e9e9e9e9e9e9e9"  # a made-up source's epoch


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def pack(ms: int, logical: int = 0) -> int:
    return ms << 16 | logical


def sane(hlc: int, slack_ms: int = 60_000) -> bool:
    """A stamp no later than the machine's clock plus the max offset (and some test slack)."""
    return (hlc >> 16) <= now_ms() + MAX_OFFSET_MS + slack_ms


def forged(key: str, hlc: int, version: int = 1) -> dict[str, Any]:
    return {
        "key": key,
        "value": 1,
        "deleted": False,
        "version": version,
        "hlc": hlc,
        "origin": "mallory",
    }


def replicate(url: str, rows_: list[dict[str, Any]], source: str = "store9") -> Response:
    body = {"source": source, "epoch": EPOCH, "source_version": len(rows_), "rows": rows_}
    return request("POST", f"{url}/v1/replicate", body)


def error_of(r: Response) -> str:
    body: dict[str, str] = r.json()
    return body["error"]


def test_a_forged_row_near_2_63_is_held_not_merged_nor_stored_and_writes_go_on(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=1)
    c.start_nodes()
    url = c.node_urls[0]
    before = node_status(url)["hlc"]
    beyond = pack(now_ms() + 60_000)  # one minute ahead: beyond the 500 ms max offset
    r = replicate(url, [forged("evil:1", MAX_STAMP, 1), forged("evil:2", beyond, 2)])
    assert r.status == 200 and r.json()["held_from"] == 1 and r.json()["applied"] == 0
    st = node_status(url)
    assert sane(st["hlc"], 0) and st["hlc"] >= before and st["skew_events"] == 2
    assert st["applied"] == {"store9": {"epoch": EPOCH, "version": 0}}
    assert request("GET", f"{url}/v1/kv/evil:1").status == 404
    assert request("GET", f"{url}/v1/kv/evil:2").status == 404
    # a stamp beyond what SQLite stores is a usage error naming the field, never a 5xx
    too_big = replicate(url, [forged("evil:3", MAX_STAMP + 1)])
    assert too_big.status == 400 and error_of(too_big) == "ErrSyntaxInvalidArgs"
    row = put(url, "ok:1", 1)
    assert sane(row["hlc"], 0)
    # the clock bound persisted is sane after a restart too
    c.restart("store1")
    assert sane(node_status(url)["hlc"], 0)
    assert sane(put(url, "ok:2", 2)["hlc"], 0)


def test_a_client_stamp_beyond_the_max_offset_is_refused_and_never_merged(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=1)
    c.start_nodes()
    url = c.node_urls[0]
    for seen in (MAX_STAMP, pack(now_ms() + 60_000)):
        r = request("PUT", f"{url}/v1/kv/k", {"value": 1}, {"X-Dtm-Hlc": str(seen)})
        assert r.status == 400 and error_of(r) == "ErrSyntaxInvalidArgs", r
        assert "X-Dtm-Hlc" in r.json()["message"]
    assert sane(node_status(url)["hlc"], 0)
    r = request("PUT", f"{url}/v1/kv/k", {"value": 1}, {"X-Dtm-Hlc": str(MAX_STAMP + 1)})
    assert r.status == 400  # out of the range any stamp can have
    assert request("GET", f"{url}/v1/kv/k").status == 404
    near = pack(now_ms() + 200)  # a node slightly ahead, within the max offset: fine
    ok = request("PUT", f"{url}/v1/kv/k", {"value": 1}, {"X-Dtm-Hlc": str(near)})
    assert ok.status == 200 and ok.json()["hlc"] > near


def test_a_row_a_little_ahead_is_held_by_the_target_and_applied_once_clocks_allow(
    cluster: Callable[..., LocalCluster],
) -> None:
    # store1 runs 3 s fast and tolerates it (its own max offset is wide); store2 allows 500 ms, so
    # it must hold store1's row back until its own clock is within 500 ms of the row's stamp.
    c = cluster(
        nodes=2,
        node_options={
            "store1": {"clock_offset_ms": 3_000, "max_clock_offset_ms": 10_000},
            "store2": {"max_clock_offset_ms": MAX_OFFSET_MS},
        },
        sections={"sync": {"wait_ms": 200}},
    )
    c.start_nodes()
    c.start("sync")
    url1, url2 = c.node_urls
    row = put(url1, "ahead", {"n": 1})
    ahead_ms = (row["hlc"] >> 16) - now_ms()
    assert ahead_ms > MAX_OFFSET_MS  # the row is stamped beyond store2's bound when written
    got = wait_until(lambda: rows(url2).get("ahead"), 20, 0.05, "store2 to apply the row")
    assert got[1:3] == (row["hlc"], "store1")
    st = node_status(url2)
    assert st["skew_events"] >= 1  # it was held back first, never merged early
    assert st["hlc"] >= row["hlc"] and (st["hlc"] >> 16) <= now_ms() + MAX_OFFSET_MS
    assert not st["fenced"]
    # redelivered every 100 ms for seconds, the hold is logged once, not once per delivery
    log = c.procs["store2"].log_path.read_text()
    assert log.count("held back rows of") == 1, log


def test_a_session_hlc_of_year_2453_through_the_handler_moves_no_clock_and_writes_go_on(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=2)
    c.start_nodes()
    for comp in ("sync", "balancer", "handler"):
        c.start(comp)
    handler = c.url("handler")
    poison = json.dumps({"hlc": 999999999999999999})
    first = request("POST", f"{handler}/v1/tasks", {"text": "poison"}, {"X-Dtm-Session": poison})
    assert first.status == 201, first
    token = first.headers["x-dtm-session"]
    assert json.loads(token).get("hlc", 0) < 999999999999999999
    for url in c.node_urls:
        assert sane(node_status(url)["hlc"], 0)
    for i in range(6):  # other sessions, and this one, keep writing
        headers = {"X-Dtm-Session": token} if i % 2 else {"X-Dtm-Session": poison}
        r = request("POST", f"{handler}/v1/tasks", {"text": f"after {i}"}, headers)
        assert r.status == 201, r
        if i % 2:
            token = r.headers["x-dtm-session"]
    for url in c.node_urls:
        assert sane(node_status(url)["hlc"], 0)


def test_a_node_30s_fast_is_fenced_refuses_writes_with_503_and_unfences_when_fixed(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=2, node_options={"store1": {"clock_offset_ms": 30_000}})
    c.start_nodes()
    c.start("sync")
    c.start("handler")  # with two nodes, the other components break the tie
    url1, url2 = c.node_urls
    wait_until(lambda: fenced(url1), 15, 0.1, "store1 to fence itself")
    r = request("PUT", f"{url1}/v1/kv/k", {"value": 1})
    assert r.status == 503 and error_of(r) == "ErrClockSkew", r
    r = request("DELETE", f"{url1}/v1/kv/k")
    assert r.status == 503 and error_of(r) == "ErrClockSkew", r
    st = node_status(url1)
    # the peers that answered the last round (at least two, or it would not be fenced)
    assert st["fenced"] and len(st["offsets"]) >= 2
    assert set(st["offsets"]) <= {"store2", "sync", "handler"}
    assert all(off < -20_000 for off in st["offsets"].values())
    metrics = request("GET", f"{url1}/metrics").body.decode()
    assert "dtm_node_fenced 1.0" in metrics and "dtm_node_clock_offset_ms{peer=" in metrics
    # `todo cluster status` shows it, per node
    view = subprocess.run(
        [sys.executable, "-m", "dtm.cli.cluster_status", "--config", str(c.config_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert view.returncode == 0, view.stderr
    lines = {ln.split()[0]: ln for ln in view.stdout.splitlines() if " -> " not in ln}
    assert "FENCED: refuses client writes" in lines["store1"], view.stdout
    assert "FENCED" not in lines["store2"] and " ok" in lines["store2"], view.stdout
    # the healthy node is not fenced, writes there, and reads on store1 still work
    assert not fenced(url2) and not node_status(url2)["fenced"]
    row = put(url2, "k", {"n": 2})
    got = wait_until(lambda: rows(url1).get("k"), 15, 0.05, "store1 to receive the write")
    assert got[1] == row["hlc"]
    assert request("GET", f"{url1}/v1/kv/k").status == 200
    # fixed: restart without the offset; it measures again and unfences
    c.node_options = {}
    c.write_config()
    c.restart("store1")
    wait_until(lambda: node_status(url1)["offsets"], 15, 0.1, "store1 to measure its peers")
    assert not fenced(url1)
    assert put(url1, "k", {"n": 3})["hlc"] > row["hlc"]
