"""One run: build the hosts, start the cluster and the clients, strike, heal, wait, check.

Rule: whatever happens — a failure, SIGINT, SIGTERM — every process this run started is killed
and every namespace and bridge it made is removed before `run_once` returns or raises.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from chaos import checker, nemesis, report
from chaos.cluster import HANDLERS, SERVICES, Cluster, http_json
from chaos.history import Final, load_ops
from chaos.net import Hosts, netem_missing, nfqueue_missing, sweep_stale

ROOT = Path(__file__).resolve().parents[1]
CONVERGE_TIMEOUT_S = 120.0


def replay_command(seed: int, minutes: float, nodes: int, short: bool) -> str:
    if short:
        return f"make chaos SEED={seed} NODES={nodes} MODE=short"
    return f"make chaos SEED={seed} MINUTES={minutes:g} NODES={nodes}"


def _digests(cluster: Cluster) -> list[Any] | None:
    out = []
    for n in cluster.nodes:
        try:
            status, body = http_json("GET", cluster.url(n) + "/v1/digest", cluster.auth)
        except OSError:
            return None
        if status != 200:
            return None
        out.append(body["buckets"])
    return out


def wait_identical(cluster: Cluster, timeout: float) -> float | None:
    """Seconds until every node's digest is equal (twice in a row), or None at the deadline."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        d = _digests(cluster)
        if d is not None and all(x == d[0] for x in d):
            if last == d[0]:
                return time.monotonic() - t0
            last = d[0]
        else:
            last = None
        time.sleep(0.25)
    return None


def live_rows(cluster: Cluster, node: str) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    after = ""
    while True:
        q = f"/v1/kv?limit=1000&after={after}" if after else "/v1/kv?limit=1000"
        status, page = http_json("GET", cluster.url(node) + q, cluster.auth, timeout=30)
        if status != 200:
            raise RuntimeError(f"{node} answered {status} to {q}: {page}")
        for r in page["rows"]:
            rows[r["key"]] = r["value"]
        if not page.get("next"):
            return rows
        after = page["next"]


def run_once(
    seed: int, minutes: float, nodes: int, clients: int, short: bool, out: Path
) -> tuple[report.RunSummary, checker.Verdict]:
    sweep_stale()
    names = [f"store{i}" for i in range(1, nodes + 1)]
    hosts = Hosts([*names, *SERVICES, "client"])
    root = out / f"seed{seed}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    cluster: Cluster | None = None
    workload: subprocess.Popen[bytes] | None = None
    seconds = nemesis.SHORT_S if short else minutes * 60
    no_netem = netem_missing()
    no_delay = nfqueue_missing() if no_netem else None  # else latency by NFQUEUE
    if no_delay:
        no_delay = f"{no_netem}; {no_delay}"
    hosts.nfqueue = no_netem is not None and no_delay is None
    kinds = tuple(k for k in nemesis.KINDS if not (k == "latency" and no_delay))
    faults = nemesis.short_plan(names) if short else nemesis.plan(seed, seconds, names, kinds)
    final = Final()
    try:
        hosts.setup()
        cluster = Cluster(root, hosts, names)
        users = [(f"c{i}", cluster.add_user(f"c{i}")) for i in range(clients)]
        cluster.start_all()
        urls = [cluster.url(h) for h in HANDLERS]
        spec = {"urls": urls, "users": users, "seconds": seconds, "seed": seed}
        (root / "workload.json").write_text(json.dumps(spec))
        history = root / "history.jsonl"
        argv = [*hosts.exec_prefix("client"), sys.executable, "-m", "chaos.workload"]
        with open(root / "logs" / "workload.log", "ab") as log:
            workload = subprocess.Popen(
                [*argv, str(root / "workload.json"), str(history)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        t0 = time.monotonic()
        ex = nemesis.Executor(cluster, hosts, seed, no_delay)
        if no_delay:
            ex.skipped.append(f"latency: {no_delay}")
        elif hosts.nfqueue:
            ex.skipped.append(f"latency: by NFQUEUE and a userspace delayer ({no_netem})")
        ex.run(faults, t0, t0 + seconds)
        try:
            workload.wait(timeout=60)
        except subprocess.TimeoutExpired:
            workload.terminate()
            workload.wait(10)
        cluster.ensure_running()
        final.converge_s = wait_identical(cluster, CONVERGE_TIMEOUT_S)
        final.identical = final.converge_s is not None
        for n in names:
            final.rows[n] = live_rows(cluster, n)
        (root / "final.json").write_text(json.dumps(final.rows))
        ops = load_ops(history)
        windows = ex.windows
        skipped = ex.skipped
    finally:
        if workload is not None and workload.poll() is None:
            workload.kill()
            workload.wait(10)
        if cluster is not None:
            cluster.stop_all()
        hosts.teardown()
    verdict = checker.check(ops, list(final.rows.values()), final.identical)
    table = report.rows(ops, windows, verdict)
    counts = {k: verdict.count(k) for k in sorted({a.kind for a in verdict.anomalies})}
    summary = report.RunSummary(
        seed=seed,
        minutes=round(seconds / 60, 2),
        nodes=nodes,
        mode="short" if short else "long",
        ops=len(ops),
        counts=counts,
        rows=list(table.values()),
        identical=final.identical,
        converge_s=final.converge_s,
        replay=replay_command(seed, minutes, nodes, short),
        skipped=skipped,
        examples=report.examples(verdict, windows),
    )
    result = {
        "seed": seed,
        "mode": summary.mode,
        "minutes": summary.minutes,
        "nodes": nodes,
        "ops": len(ops),
        "reads": verdict.reads,
        "counts": counts,
        "identical": final.identical,
        "converge_s": final.converge_s,
        "replay": summary.replay,
        "skipped": skipped,
        "rows": [report.row_to_json(r) for r in summary.rows],
        "windows": [w.__dict__ for w in windows],
        "anomalies": [report.anomaly_to_json(a, windows) for a in verdict.anomalies[:500]],
    }
    (root / "result.json").write_text(json.dumps(result, indent=1, default=str))
    return summary, verdict
