"""Reference systems run beside dtm's parts in the same run: the balancer beside HAProxy (the
same two data nodes behind each), a data node's PUT beside Redis with appendfsync always, and a
node's cheapest request (``GET /healthz``) beside a bare llhttp server (`bench.floor`).

Rule: each round measures both sides of every pair, which goes first alternating; a proxy's CPU
per request is its own process's; Redis is loaded by redis-benchmark (RESP, not HTTP) with the
same clients on the load core, its CPU per request is redis-server's over that run.
"""

from __future__ import annotations

import csv
import io
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from bench import load, machine
from bench.load import Target
from bench.model import Group, Plan, Results, Row, Run
from bench.systems import PUT_BODY, harness
from tests.tasks_fill import TASK_VALUE, fill, task_key

HAPROXY = """global\n  nbthread 1\ndefaults\n  mode http\n  timeout connect 5s
  timeout client 30s\n  timeout server 30s\nfrontend in\n  bind 127.0.0.1:{port}
  default_backend nodes\nbackend nodes\n  balance roundrobin\n  option httpchk GET /healthz
{servers}
"""


def pairs(conns: int) -> list[tuple[str, str, str]]:
    """(dtm's row, the reference's row, the page's label) for each comparison, in order."""
    n = f"{conns} clients"
    return [
        (f"dtm balancer: GET, {n}", f"HAProxy: GET, {n}", f"GET via the balancer vs HAProxy, {n}"),
        (f"dtm balancer: PUT, {n}", f"HAProxy: PUT, {n}", f"PUT via the balancer vs HAProxy, {n}"),
        (f"dtm node: PUT, {n}", f"Redis: SET, {n}", f"a node's PUT vs Redis's SET, {n}"),
        (
            f"dtm node: GET /healthz, {n}",
            f"bare llhttp server: GET, {n}",
            f"a node's /healthz (dtm.site) vs a bare llhttp server, {n}",
        ),
    ]


def _redis_run(port: int, password: str, pid: int, plan: Plan) -> Run:
    """redis-benchmark's SETs of a task-sized value, with redis-server's CPU per request."""
    n = max(1000, int(4000 * plan.seconds))
    argv = ["redis-benchmark", "-p", str(port), "-a", password, "-c", str(plan.conns)]
    argv += ["-n", str(n), "-t", "set", "-d", str(len(TASK_VALUE)), "--csv"]
    cpu0 = machine.cpu_seconds(pid)
    out = subprocess.run(machine.pinned(argv, machine.LOAD_CPU), capture_output=True, text=True)
    row = next((r for r in csv.DictReader(io.StringIO(out.stdout)) if r["test"] == "SET"), None)
    if row is None:
        raise RuntimeError(f"redis-benchmark printed no SET rate: {out.stderr[-300:]!r}")
    cpu = (machine.cpu_seconds(pid) - cpu0) / n * 1e6
    p50, p99 = float(row["p50_latency_ms"]), float(row["p99_latency_ms"])
    return Run(float(row["rps"]), p50, p99, 0, n, {"redis-server": cpu})


class References:
    """Two data nodes, dtm's balancer and HAProxy in front of both, and one Redis."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.c = harness.LocalCluster(folder, nodes=2)
        self.ports = {p: harness.free_port() for p in ("haproxy", "redis", "floor")}
        self.password = secrets.token_urlsafe(16)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        self.c.start_nodes()
        for url in self.c.node_urls:
            fill(url, 10)
        self.c.start("balancer")
        nodes = [(n, self.c.ports[n]) for n in self.c.node_names]
        servers = "\n".join(f"  server {n} 127.0.0.1:{p} check inter 1s" for n, p in nodes)
        cfg = self.folder / "haproxy.cfg"
        cfg.write_text(HAPROXY.format(port=self.ports["haproxy"], servers=servers))
        argv = ["haproxy", "-db", "-f", str(cfg)]
        self.procs["haproxy"] = machine.spawn(argv, self.folder / "haproxy.log")
        argv = ["redis-server", "--port", str(self.ports["redis"]), "--bind", "127.0.0.1"]
        argv += ["--requirepass", self.password, "--dir", str(self.folder), "--save", ""]
        argv += ["--appendonly", "yes", "--appendfsync", "always"]
        self.procs["redis"] = machine.spawn(argv, self.folder / "redis.log")
        argv = [sys.executable, "-m", "bench.floor", str(self.ports["floor"])]
        self.procs["floor"] = machine.spawn(argv, self.folder / "floor.log")
        ping = ["redis-cli", "-p", str(self.ports["redis"]), "-a", self.password, "ping"]
        harness.wait_until(
            lambda: b"PONG" in subprocess.run(ping, capture_output=True).stdout, 10, 0.05, "redis"
        )
        url = f"http://127.0.0.1:{self.ports['haproxy']}/healthz"
        harness.wait_until(lambda: harness.request("GET", url).status == 200, 10, 0.05, "haproxy")
        url = f"http://127.0.0.1:{self.ports['floor']}/healthz"
        harness.wait_until(lambda: harness.request("GET", url).status == 200, 10, 0.05, "floor")
        for p in (*self.c.procs.values(), *self.procs.values()):
            machine.pin(p.pid)

    def measure(self, name: str, plan: Plan, workdir: Path) -> Run:
        """One run of the row called ``name``."""
        if name.startswith("Redis"):
            return _redis_run(self.ports["redis"], self.password, self.procs["redis"].pid, plan)
        via, op = name.split(": ")[0], name.split(": ")[1][:3]
        base, pid = self.fronts()[via]
        body = PUT_BODY.decode() if op == "PUT" else None
        auth = {"Authorization": self.c.auth_header}
        path = "/healthz" if "/healthz" in name or via.startswith("bare") else None
        t = Target(base, op, path or f"/v1/kv/{task_key(1 if body else 0)}", body, auth)
        return load.run(t, plan.seconds, plan.conns, workdir, {via: pid})

    def fronts(self) -> dict[str, tuple[str, int]]:
        """Where each HTTP row sends its requests, and the process whose CPU it counts."""
        return {
            "dtm balancer": (self.c.url("balancer"), self.c.procs["balancer"].pid),
            "HAProxy": (f"http://127.0.0.1:{self.ports['haproxy']}", self.procs["haproxy"].pid),
            "dtm node": (self.c.url("store1"), self.c.procs["store1"].pid),
            "bare llhttp server": (
                f"http://127.0.0.1:{self.ports['floor']}",
                self.procs["floor"].pid,
            ),
        }

    def stop(self) -> None:
        machine.stop(self.procs.values())
        self.c.stop_all()


def run(plan: Plan, res: Results, workdir: Path) -> None:
    g = Group("references")
    res.groups.append(g)
    rows = {name: g.add(Row(name, "req/s")) for p in pairs(plan.conns) for name in p[:2]}
    missing = [t for t in ("haproxy", "redis-server", "redis-benchmark") if not shutil.which(t)]
    if missing:
        for r in rows.values():
            r.not_measured = f"not measured: {', '.join(missing)} missing (make bench-deps)"
        return
    refs = References(workdir / "refs")
    try:
        refs.start()
        for i in range(plan.runs):
            print(f"  round {i + 1}/{plan.runs}", flush=True)
            for ours, theirs, _ in pairs(plan.conns):
                for name in (ours, theirs)[:: 1 - 2 * (i % 2)]:
                    r = refs.measure(name, plan, workdir)
                    rows[name].runs.append(r)
                    cpu = ", ".join(f"{n} {v:.0f}" for n, v in r.cpu_us.items())
                    print(f"    {name:<44} {r.value:>8,.0f}/s, {r.errors} errors; µs/req: {cpu}")
    finally:
        refs.stop()
        shutil.rmtree(workdir / "refs", ignore_errors=True)
