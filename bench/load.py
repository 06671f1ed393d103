"""The one HTTP load generator: wrk with a Lua script per target, on the load core, with the CPU
time every server process spent meanwhile.

Rule: every throughput figure of every system comes from the same wrk invocation (one thread,
the same connections and duration); a process's CPU per request is the delta of its
/proc/PID/stat over the run divided by the requests wrk completed.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench import machine
from bench.model import Run

_ids = itertools.count()


@dataclass(frozen=True)
class Target:
    """What every request of one run sends."""

    base: str
    method: str
    path: str
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def lua(t: Target) -> str:
    headers = dict(t.headers, **({"Content-Type": "application/json"} if t.body else {}))
    lua_headers = ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items())
    body = "nil" if t.body is None else f"[==[{t.body}]==]"
    call = f"wrk.format({json.dumps(t.method)}, {json.dumps(t.path)}, {{{lua_headers}}}, {body})"
    return f"request = function() return {call} end\n"


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
    return float(m.group(1)) * scale[m.group(2)] if m else float("nan")


def parse(out: str) -> Run:
    """Requests/s, p50/p99, errors (non-2xx answers and socket errors) from wrk's output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise RuntimeError(f"wrk printed no rate:\n{out[-2000:]}")
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    done = re.search(r"(\d+) requests in", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + sum(map(int, sock.groups() if sock else []))
    lat = [_ms(m.group(1)) if m else None for m in (p50, p99)]
    return Run(float(rps.group(1)), *lat, errors, int(done.group(1)) if done else 0)


def run(t: Target, seconds: float, conns: int, workdir: Path, pids: dict[str, int]) -> Run:
    """One wrk run against ``t``; with the CPU per request and peak RSS of each of ``pids``."""
    script = workdir / f"wrk{next(_ids)}.lua"
    script.write_text(lua(t))
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--timeout", "30s"]
    argv += ["--latency", "-s", str(script), t.base]
    cpu0 = {name: machine.cpu_seconds(pid) for name, pid in pids.items()}
    argv = machine.pinned(argv, machine.LOAD_CPU)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    r = parse(done.stdout + done.stderr)
    if r.requests:
        for name, pid in pids.items():
            r.cpu_us[name] = (machine.cpu_seconds(pid) - cpu0[name]) / r.requests * 1e6
    r.rss_mib = {name: machine.peak_rss_mib(pid) for name, pid in pids.items()}
    return r
