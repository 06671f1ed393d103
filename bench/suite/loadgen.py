"""The one HTTP load generator of the suite: wrk with a Lua script per target, pinned to its core.

Rule: every throughput figure of ours, of HAProxy and of a node directly comes from the same
driver with the same connections and duration; wrk is the driver, and an aiohttp client stands in
only when wrk cannot be installed (the page then says so).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.suite import env
from bench.suite.model import Row, Run, percentile

_script_ids = itertools.count()


@dataclass(frozen=True)
class Target:
    """What one run sends: ``keys`` = "none" (path as is), "unique" (path + a new suffix per
    request) or "random" (path + a number in 1..key_count)."""

    base: str
    method: str
    path: str
    body: str | None = None
    keys: str = "none"
    key_count: int = 1000
    cpu_pid: int | None = None  # a server process whose CPU time per request to record


def _auth_for(base: str) -> str | None:
    """The cluster credential a test cluster's port expects (tests/harness.py), if any."""
    from harness import AUTH_BY_PORT, AUTH_ONLY_PATHS

    port = int(base.rsplit(":", 1)[1].split("/")[0])
    return None if port in AUTH_ONLY_PATHS else AUTH_BY_PORT.get(port)


def lua(t: Target, prefix: str) -> str:
    """A wrk script for ``t``; unique keys start with ``prefix`` so repeated runs never collide."""
    if t.keys == "unique":
        path = f'"{t.path}{prefix}" .. n'
    elif t.keys == "random":
        path = f'"{t.path}" .. math.random(1, {t.key_count})'
    else:
        path = json.dumps(t.path)
    fields = []
    if t.body is not None:
        fields.append('["Content-Type"] = "application/json"')
    auth = _auth_for(t.base)
    if auth is not None:
        fields.append(f'["Authorization"] = "{auth}"')
    headers = "{" + ", ".join(fields) + "}"
    body = "nil" if t.body is None else "[==[" + t.body + "]==]"
    return (
        "local n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        f"  return wrk.format({json.dumps(t.method)}, {path}, {headers}, {body})\n"
        "end\n"
    )


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if m is None:
        return float("nan")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]


def parse_wrk(out: str) -> Run:
    """Requests/s, p50/p99 and errors (non-2xx answers and socket errors) from wrk's output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise RuntimeError(f"wrk printed no rate:\n{out[-2000:]}")
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        errors += sum(int(x) for x in sock.groups())
    done = re.search(r"(\d+) requests in", out)
    return Run(
        float(rps.group(1)),
        _ms(p50.group(1)) if p50 else None,
        _ms(p99.group(1)) if p99 else None,
        errors,
        requests=int(done.group(1)) if done else 0,
    )


def driver() -> str:
    return "wrk" if shutil.which("wrk") else "aiohttp"


def run_wrk(t: Target, seconds: int, conns: int, workdir: Path) -> Run:
    n = next(_script_ids)
    script = workdir / f"wrk{n}.lua"
    script.write_text(lua(t, f"r{n}x{random.randrange(1 << 30):x}-"))
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{max(1, seconds)}s", "--latency", "-s", str(script)]
    argv.append(t.base)
    proc = subprocess.run(
        env.pinned(argv, env.LOAD_CPU),
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    return parse_wrk(proc.stdout + proc.stderr)


async def _aiohttp_run(t: Target, seconds: float, conns: int) -> Run:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    counter = itertools.count(1)
    prefix = f"a{random.randrange(1 << 30):x}-"
    headers = {"Content-Type": "application/json"} if t.body is not None else {}
    deadline = time.perf_counter() + seconds

    def path() -> str:
        if t.keys == "unique":
            return f"{t.path}{prefix}{next(counter)}"
        if t.keys == "random":
            return f"{t.path}{random.randint(1, t.key_count)}"
        return t.path

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            async with http.request(t.method, t.base + path(), data=t.body, headers=headers) as r:
                await r.read()
                errors += r.status >= 300
            latencies.append(time.perf_counter() - t0)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conns)) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(conns)))
        elapsed = time.perf_counter() - t0
    return Run(
        len(latencies) / elapsed,
        percentile(latencies, 50) * 1000,
        percentile(latencies, 99) * 1000,
        errors,
        requests=len(latencies),
    )


def run_once(t: Target, seconds: int, conns: int, workdir: Path) -> Run:
    cpu0 = env.cpu_seconds(t.cpu_pid) if t.cpu_pid else 0.0
    if driver() == "wrk":
        r = run_wrk(t, seconds, conns, workdir)
    else:
        r = asyncio.run(_aiohttp_run(t, seconds, conns))
    if t.cpu_pid and r.requests:
        r.cpu_us = (env.cpu_seconds(t.cpu_pid) - cpu0) / r.requests * 1e6
    return r


def measure_interleaved(
    plan: list[tuple[Row, Target]], *, runs: int, seconds: int, conns: int, workdir: Path
) -> None:
    """Run every target once per round, ``runs`` rounds: drift on a shared machine then falls on
    every target alike instead of on whichever ran last."""
    for i in range(runs):
        for row, t in plan:
            r = run_once(t, seconds, conns, workdir)
            row.runs.append(r)
            print(
                f"    {row.name:<40} run {i + 1}/{runs}: {r.value:>9,.0f} {row.unit}"
                f"  p50 {r.p50_ms or 0:.2f} ms  p99 {r.p99_ms or 0:.2f} ms"
                + (f"  errors {r.errors}" if r.errors else ""),
                flush=True,
            )
