"""Group 7: the peak resident memory of every component with the large table on both nodes.

Rule: peak = VmHWM from /proc/PID/status, read after the component did its heaviest work of the
run: the nodes served the fill and the catch-up, the sync process copied the table (several
times), and the balancer and handler carried a create load and one list of every task.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.suite import env, loadgen
from bench.suite.g_paths import CREATE_BODY
from bench.suite.model import Group, Results, Row, Run
from bench.suite.plan import Plan
from bench.suite.servers import LocalCluster, Servers, request

TITLE = "7. Memory: peak RSS of each component"
LIST_TIMEOUT_S = 20.0


def _group(plan: Plan) -> Group:
    return Group(
        "memory",
        TITLE,
        method=(
            f"On the catch-up cluster (both nodes holding {plan.big_rows:,} rows, after "
            f"{plan.runs} wipe-and-refill runs), the balancer and the handler are started and "
            f"carry a {plan.seconds} s create load ({loadgen.driver()} -c{plan.conns}) and one "
            f"`GET /v1/tasks` listing every task; then VmHWM is read from /proc/PID/status of "
            f"each process."
        ),
    )


def not_measured(res: Results, why: str) -> None:
    res.groups.append(Group("memory", TITLE, not_measured=why))


def measure(plan: Plan, res: Results, c: LocalCluster, servers: Servers, workdir: Path) -> None:
    g = _group(plan)
    res.groups.append(g)
    c.start("balancer")
    c.start("handler")
    t = loadgen.Target(c.url("handler"), "POST", "/v1/tasks", CREATE_BODY)
    loadgen.run_once(t, plan.seconds, plan.conns, workdir)
    t0 = time.perf_counter()
    try:
        r = request("GET", c.url("handler") + "/v1/tasks", timeout=LIST_TIMEOUT_S)
        took = time.perf_counter() - t0
        listed = r.body.count(b'"id"') if r.status == 200 else 0
        g.notes.append(
            f"The list of every task answered {r.status} with {listed:,} tasks "
            f"({len(r.body) / 1e6:.1f} MB) in {took:.1f} s."
        )
    except TimeoutError:
        g.notes.append(
            f"The list of every task had not answered after {LIST_TIMEOUT_S:.0f} s (the suite's "
            f"budget for it); the handler's peak below was read while it was still listing."
        )
    for name in ("store1", "store2", "sync", "balancer", "handler"):
        proc = c.procs.get(name)
        peak = env.peak_rss_mib(proc.pid) if proc is not None and proc.alive() else None
        row = g.add(Row(f"peak RSS: {name}", "MiB"))
        if peak is None:
            row.not_measured = "process not running"
        else:
            row.runs.append(Run(peak))
    g.notes.append("One reading per process: a peak, not a median of runs.")
