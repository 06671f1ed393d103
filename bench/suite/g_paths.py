"""Groups 2 and 3, the user path: our balancer next to HAProxy and to a node directly, and the
request handler's create and list next to the balancer alone and a node directly.

Rule: every path is driven by the same wrk invocation (same connections, duration and core),
targets are interleaved round by round, and every server of the path shares the server core.
"""

from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path

from bench.suite import env, loadgen, refs
from bench.suite.loadgen import Target
from bench.suite.model import Group, Results, Row, Run
from bench.suite.plan import Plan
from bench.suite.profile import profile_during
from bench.suite.servers import PUT_BODY, Servers, fill

CREATE_BODY = '{"text":"benchmark task"}'
SCAN = "/v1/kv?limit=2000"


def bal_row(op: str, path: str) -> str:
    return f"balancer: {op} {path}"


def path_row(op: str, path: str) -> str:
    return f"path: {op} {path}"


GO_LIST = "Go original: list through its balancer"
GO_CREATE = "Go original: create through its balancer"


def _method(plan: Plan, what: str) -> str:
    return (
        f"{what} {loadgen.driver()} -t1 -c{plan.conns} -d{plan.seconds}s pinned to CPU "
        f"{env.LOAD_CPU}; every server (nodes, balancer, handler, HAProxy) pinned to CPU "
        f"{env.SERVER_CPU}; {plan.runs} rounds with the targets interleaved."
    )


def cpu_row(op: str, path: str) -> str:
    return f"balancer: {op} CPU of the proxy process {path}"


def run_balancer(plan: Plan, res: Results, workdir: Path) -> None:
    g = Group(
        "balancer",
        "2. Load balancer: ours vs HAProxy vs direct",
        method=_method(
            plan,
            "Two `dtm node`s holding the same 1,000 keys; our `dtm balancer` and HAProxy 2.6 "
            "(one thread, round robin, keep-alive, health checks) in front of both. GET of a "
            "random existing key, PUT of a new key (durable), by",
        ),
    )
    g.notes.append(
        "Both proxies share CPU 0 with the two nodes, so the nodes bound the throughput of "
        "either; the proxy process's own CPU time per request (from /proc, during the same runs) "
        "compares the proxies without that bound."
    )
    res.groups.append(g)
    servers = Servers(workdir)
    try:
        c = servers.cluster("g2", nodes=2)
        c.start_nodes()
        c.start("balancer")
        for n in c.node_names:
            fill(c.url(n), 0, 1000, key=lambda i: f"k{i + 1}")
        targets: dict[str, tuple[str, int | None]] = {
            "direct to a node": (c.url("store1"), None),
            "through ours": (c.url("balancer"), c.procs["balancer"].pid),
        }
        if env.ensure_apt("haproxy", "haproxy"):
            targets["through HAProxy"] = servers.haproxy(c)
        servers.pin(c)
        plan_rows: list[tuple[Row, Target]] = []
        for op in ("GET", "PUT"):
            for path, (base, pid) in targets.items():
                refs_ = []
                if path == "through ours":
                    refs_ = [bal_row(op, "through HAProxy"), bal_row(op, "direct to a node")]
                elif path == "through HAProxy":
                    refs_ = [bal_row(op, "direct to a node")]
                row = g.add(Row(bal_row(op, path), "req/s", refs=refs_))
                if op == "GET":
                    t = Target(base, "GET", "/v1/kv/k", keys="random", key_count=1000, cpu_pid=pid)
                else:
                    t = Target(base, "PUT", "/v1/kv/", PUT_BODY, keys="unique", cpu_pid=pid)
                plan_rows.append((row, t))
        if "through HAProxy" not in targets:
            for op in ("GET", "PUT"):
                g.add(Row(bal_row(op, "through HAProxy"), "req/s", not_measured="no haproxy"))
        loadgen.measure_interleaved(
            plan_rows, runs=plan.runs, seconds=plan.seconds, conns=plan.conns, workdir=workdir
        )
        for op in ("GET", "PUT"):
            for path in ("through ours", "through HAProxy"):
                measured = g.row(bal_row(op, path))
                if measured is None or not measured.runs:
                    continue
                refs_ = [cpu_row(op, "through HAProxy")] if path == "through ours" else []
                cpu = [Run(r.cpu_us) for r in measured.runs if r.cpu_us is not None]
                g.add(Row(cpu_row(op, path), "µs/req", cpu, refs=refs_))
        for op in ("GET", "PUT"):
            by_rate = res.ratio_of(bal_row(op, "through ours"), bal_row(op, "through HAProxy"))
            by_cpu = res.ratio_of(cpu_row(op, "through HAProxy"), cpu_row(op, "through ours"))
            if plan.profile and any(r is not None and r < 0.5 for r in (by_rate, by_cpu)):
                base, pid = targets["through ours"]
                assert pid is not None
                if op == "GET":
                    t = Target(base, "GET", "/v1/kv/k", keys="random", key_count=1000)
                else:
                    t = Target(base, "PUT", "/v1/kv/", PUT_BODY, keys="unique")
                res.profiles[f"balancer: {op}"] = profile_during(
                    pid,
                    plan.seconds + 1,
                    partial(loadgen.run_once, t, plan.seconds + 1, plan.conns, workdir),
                    workdir / f"spy-balancer-{op}.txt",
                )
    finally:
        servers.stop_all()
        shutil.rmtree(workdir / "g2", ignore_errors=True)


def run_handler(plan: Plan, res: Results, workdir: Path) -> None:
    g = Group(
        "handler",
        "3. Request handler (the full path): create and list vs balancer vs direct",
        method=_method(
            plan,
            f"Two `dtm node`s holding the same {plan.list_tasks} tasks, `dtm balancer`, "
            f"`dtm handler`. List: `GET /v1/tasks` through the handler (parsed, ordered) vs "
            f"`GET {SCAN}` (the same rows as bytes) through the balancer and direct. Create: "
            f"`POST /v1/tasks` through the handler vs a durable `PUT /v1/kv/<new key>` through "
            f"the balancer and direct. All list rounds run before the create rounds, so every "
            f"list sees the same rows. By",
        ),
    )
    res.groups.append(g)
    servers = Servers(workdir)
    try:
        c = servers.cluster("g3", nodes=2)
        c.start_nodes()
        c.start("balancer")
        c.start("handler")
        servers.pin(c)
        for n in c.node_names:
            fill(c.url(n), 0, plan.list_tasks)
        h, b, d = c.url("handler"), c.url("balancer"), c.url("store1")
        for op, go_name, go_value in (
            ("list", GO_LIST, refs.GO_LIST_RPS),
            ("create", GO_CREATE, refs.GO_CREATE_RPS),
        ):
            full = [path_row(op, "direct to a node"), path_row(op, "through the balancer"), go_name]
            rows = [
                (Row(path_row(op, "through the handler"), "req/s", refs=full), "handler"),
                (
                    Row(path_row(op, "through the balancer"), "req/s", refs=[full[0]]),
                    "balancer",
                ),
                (Row(path_row(op, "direct to a node"), "req/s"), "direct"),
            ]
            plan_rows: list[tuple[Row, Target]] = []
            for row, via in rows:
                g.add(row)
                base = {"handler": h, "balancer": b, "direct": d}[via]
                pid = c.procs["handler"].pid if via == "handler" else None
                if op == "list":
                    t = Target(base, "GET", "/v1/tasks" if via == "handler" else SCAN, cpu_pid=pid)
                elif via == "handler":
                    t = Target(base, "POST", "/v1/tasks", CREATE_BODY, cpu_pid=pid)
                else:
                    t = Target(base, "PUT", "/v1/kv/", PUT_BODY, keys="unique")
                plan_rows.append((row, t))
            g.add(refs.go_row(go_name, go_value, "req/s"))
            loadgen.measure_interleaved(
                plan_rows, runs=plan.runs, seconds=plan.seconds, conns=plan.conns, workdir=workdir
            )
            handler_row = rows[0][0]
            cpu = [Run(r.cpu_us) for r in handler_row.runs if r.cpu_us is not None]
            g.add(Row(f"path: {op} CPU of the handler process", "µs/req", cpu))
        g.notes.append(
            "Every hop shares CPU 0, so the full path's rate is bounded by the sum of the hops' "
            "CPU per request; the handler's own share is in its CPU row."
        )
        for op, body, method, go in (
            ("create", CREATE_BODY, "POST", GO_CREATE),
            ("list", None, "GET", GO_LIST),
        ):
            ours = path_row(op, "through the handler")
            direct = res.ratio_of(ours, path_row(op, "direct to a node"))
            vs_go = res.ratio_of(ours, go)
            missed = (direct is not None and direct < 1 / 3) or (vs_go is not None and vs_go <= 1)
            if plan.profile and missed:
                t = Target(h, method, "/v1/tasks", body)
                res.profiles[f"handler: {op}"] = profile_during(
                    c.procs["handler"].pid,
                    plan.seconds + 1,
                    partial(loadgen.run_once, t, plan.seconds + 1, plan.conns, workdir),
                    workdir / f"spy-handler-{op}.txt",
                )
    finally:
        servers.stop_all()
        shutil.rmtree(workdir / "g3", ignore_errors=True)
