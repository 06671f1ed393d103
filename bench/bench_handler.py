"""Create and list through the request handler, next to the balancer alone and a node directly.

    python bench/bench_handler.py [--quick] [--seconds S] [--connections C] [--tasks N]
                                  [--driver wrk|aiohttp]

Starts two real data nodes, the load balancer and the request handler on ephemeral loopback
ports; writes N tasks (default 100) to both nodes, so a list finds the same rows wherever it is
served; then, at C concurrent connections (default 32), drives in one run:

    list    handler  GET /v1/tasks                 (the task list: N tasks, parsed and ordered)
            balancer GET /v1/kv?limit=2000         (the same rows, forwarded as bytes)
            direct   GET /v1/kv?limit=2000         (the same rows, from store1 itself)
    create  handler  POST /v1/tasks                (validate, new ID, durable PUT via balancer)
            balancer PUT /v1/kv/{random key}       (the same durable write, forwarded)
            direct   PUT /v1/kv/{random key}       (the same durable write, to store1 itself)

with `wrk` if installed (else an aiohttp client), and prints requests/s, p50/p99 and the ratios
handler/direct and handler/balancer; stops everything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import LocalCluster, request

VALUE = json.dumps(
    {
        "text": "benchmark task",
        "status": "open",
        "created": "2026-01-01T00:00:00.000Z",
        "updated": "2026-01-01T00:00:00.000Z",
    }
)
PUT_BODY = '{"value":' + VALUE + "}"
CREATE_BODY = '{"text":"benchmark task"}'


@dataclass(frozen=True)
class Target:
    """One thing to measure: a method, a URL path (a random key is appended for PUTs), a body."""

    method: str
    base: str
    path: str
    body: str | None = None
    random_key: bool = False


@dataclass(frozen=True)
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


# ---------------------------------------------------------------- drivers


def _lua(t: Target) -> str:
    """A wrk script for ``t`` (random keys drawn per request)."""
    path = f'"{t.path}" .. string.format("%012d", math.random(0, 999999999999))'
    if not t.random_key:
        path = f'"{t.path}"'
    headers = '{["Content-Type"] = "application/json"}' if t.body is not None else "{}"
    body = "nil" if t.body is None else "[[" + t.body + "]]"
    return (
        "math.randomseed(os.time())\n"
        f"request = function()\n  return wrk.format({json.dumps(t.method)}, {path}, "
        f"{headers}, {body})\nend\n"
    )


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if m is None:
        return float("nan")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def run_wrk(t: Target, seconds: float, conns: int, workdir: Path) -> Result:
    script = workdir / "bench.lua"
    script.write_text(_lua(t))
    duration = f"-d{max(1, round(seconds))}s"
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conns}", duration, "--latency", "-s", str(script), t.base],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise RuntimeError(f"wrk failed:\n{out}")
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    errors = sum(
        int(m.group(1))
        for pat in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: .*?(\d+)")
        if (m := re.search(pat, out))
    )
    return Result(
        float(rps.group(1)),
        _ms(p50.group(1)) if p50 else float("nan"),
        _ms(p99.group(1)) if p99 else float("nan"),
        errors,
    )


async def run_aiohttp(t: Target, seconds: float, conns: int) -> Result:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    headers = {"Content-Type": "application/json"} if t.body is not None else {}

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            path = t.path + (f"{random.randrange(10**12):012d}" if t.random_key else "")
            t0 = time.perf_counter()
            async with http.request(t.method, t.base + path, data=t.body, headers=headers) as r:
                await r.read()
                errors += r.status >= 300
            latencies.append(time.perf_counter() - t0)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conns)) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(conns)))
        elapsed = time.perf_counter() - t0
    latencies.sort()
    n = len(latencies)
    return Result(n / elapsed, latencies[n // 2] * 1e3, latencies[int(n * 0.99)] * 1e3, errors)


# ---------------------------------------------------------------- the run


def fill(c: LocalCluster, tasks: int) -> None:
    """``tasks`` task rows with the same keys on every node."""
    for i in range(tasks):
        for node in c.node_names:
            resp = request("PUT", f"{c.url(node)}/v1/kv/{i:012d}", PUT_BODY)
            assert resp.status == 200, resp


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 s per run instead of 5")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--tasks", type=int, default=100, help="tasks in the listed table")
    ap.add_argument("--driver", choices=("wrk", "aiohttp"), default=None)
    args = ap.parse_args()
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    driver = args.driver or ("wrk" if shutil.which("wrk") else "aiohttp")
    workdir = Path(tempfile.mkdtemp(prefix="bench-handler-"))
    c = LocalCluster(workdir / "cluster", nodes=2)
    try:
        c.start_nodes()
        c.start("balancer")
        c.start("handler")
        fill(c, args.tasks)
        h, b, d = c.url("handler"), c.url("balancer"), c.url("store1")
        scan = "/v1/kv?limit=2000"
        plan: dict[str, dict[str, Target]] = {
            "list": {
                "handler": Target("GET", h, "/v1/tasks"),
                "balancer": Target("GET", b, scan),
                "direct": Target("GET", d, scan),
            },
            "create": {
                "handler": Target("POST", h, "/v1/tasks", CREATE_BODY),
                "balancer": Target("PUT", b, "/v1/kv/", PUT_BODY, random_key=True),
                "direct": Target("PUT", d, "/v1/kv/", PUT_BODY, random_key=True),
            },
        }
        print(
            f"driver={driver} connections={args.connections} seconds={seconds} "
            f"listed tasks={args.tasks}"
        )
        print(f"{'op':7} {'target':9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
        results: dict[tuple[str, str], Result] = {}
        for op, targets in plan.items():
            for name, t in targets.items():
                if driver == "wrk":
                    r = run_wrk(t, seconds, args.connections, workdir)
                else:
                    r = asyncio.run(run_aiohttp(t, seconds, args.connections))
                results[(op, name)] = r
                print(f"{op:7} {name:9} {r.rps:9.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.errors:7d}")
        for op in plan:
            full = results[(op, "handler")].rps
            print(
                f"{op}: handler/direct = {full / results[(op, 'direct')].rps:.2f}, "
                f"handler/balancer = {full / results[(op, 'balancer')].rps:.2f}"
            )
        print(request("GET", h + "/v1/status").body.decode())
    finally:
        c.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
