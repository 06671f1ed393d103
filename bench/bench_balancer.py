"""Throughput and latency of the load balancer, next to HAProxy and to a data node directly.

    python bench/bench_balancer.py [--quick] [--seconds S] [--connections C] [--driver wrk|aiohttp]

Starts two real data nodes, our balancer and (if `haproxy` is installed) HAProxy in front of the
same nodes, all on ephemeral loopback ports; fills 1,000 keys; then drives GET and PUT of random
keys at C concurrent connections through each target in turn (direct to one node, our
balancer, HAProxy) with `wrk` if installed, else an aiohttp client; prints requests/s, p50/p99
and the ratios; stops everything.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import LocalCluster, free_port, request, wait_until

KEYS = 1000
VALUE = b'{"value":{"text":"benchmark task","status":"open"}}'

GET_LUA = f"""
request = function()
  return wrk.format("GET", "/v1/kv/k" .. math.random(1, {KEYS}))
end
"""

PUT_LUA = f"""
request = function()
  return wrk.format("PUT", "/v1/kv/k" .. math.random(1, {KEYS}),
    {{["Content-Type"] = "application/json"}}, '{VALUE.decode()}')
end
"""


class Result:
    def __init__(self, rps: float, p50_ms: float, p99_ms: float, errors: int) -> None:
        self.rps = rps
        self.p50_ms = p50_ms
        self.p99_ms = p99_ms
        self.errors = errors


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not m:
        return float("nan")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    return float(m.group(1)) * scale


def run_wrk(url: str, lua: str, seconds: float, conns: int, workdir: Path) -> Result:
    script = workdir / f"s{abs(hash(lua))}.lua"
    script.write_text(lua)
    duration = f"-d{max(1, round(seconds))}s"
    proc = subprocess.run(
        ["wrk", "-t1", f"-c{conns}", duration, "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
    )
    out = proc.stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise RuntimeError(f"wrk failed: {proc.stdout}\n{proc.stderr}")
    rps = float(found.group(1))
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    errors = 0
    for pat in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: .*?(\d+)"):
        m = re.search(pat, out)
        if m:
            errors += int(m.group(1))
    return Result(rps, _ms(p50.group(1)) if p50 else 0.0, _ms(p99.group(1)) if p99 else 0.0, errors)


async def _aiohttp_run(url: str, method: str, seconds: float, conns: int) -> Result:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            key = random.randint(1, KEYS)
            t0 = time.perf_counter()
            data = VALUE if method == "PUT" else None
            async with session.request(method, f"{url}/v1/kv/k{key}", data=data) as resp:
                await resp.read()
                if resp.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - t0)

    connector = aiohttp.TCPConnector(limit=conns)
    async with aiohttp.ClientSession(connector=connector) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(conns)))
        elapsed = time.perf_counter() - t0
    latencies.sort()
    n = len(latencies)
    return Result(n / elapsed, latencies[n // 2] * 1000, latencies[int(n * 0.99)] * 1000, errors)


def start_haproxy(c: LocalCluster, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    servers = "\n".join(
        f"  server {n} 127.0.0.1:{c.ports[n]} check inter 500ms" for n in c.node_names
    )
    cfg = workdir / "haproxy.cfg"
    cfg.write_text(
        f"""global
  maxconn 4096
  nbthread 1
defaults
  mode http
  timeout connect 500ms
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:{port}
  default_backend nodes
backend nodes
  balance roundrobin
{servers}
"""
    )
    proc = subprocess.Popen(["haproxy", "-f", str(cfg)], stdout=subprocess.DEVNULL)
    wait_until(
        lambda: request("GET", f"http://127.0.0.1:{port}/healthz", timeout=1).status == 200,
        10,
        0.05,
        "haproxy to answer",
    )
    return proc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 s per run instead of 5")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--driver", choices=("wrk", "aiohttp"), default=None)
    args = ap.parse_args()
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    driver = args.driver or ("wrk" if shutil.which("wrk") else "aiohttp")
    workdir = Path(tempfile.mkdtemp(prefix="bench-balancer-"))
    c = LocalCluster(workdir / "cluster", nodes=2)
    haproxy: subprocess.Popen[bytes] | None = None
    try:
        c.start_nodes()
        c.start("balancer")
        targets = {"direct": c.url("store1"), "balancer": c.url("balancer")}
        if shutil.which("haproxy"):
            hport = free_port()
            haproxy = start_haproxy(c, hport, workdir)
            targets["haproxy"] = f"http://127.0.0.1:{hport}"
        else:
            print("haproxy not installed: skipping it (apt-get install -y haproxy)")
        for k in range(1, KEYS + 1):  # every node holds every key, so GETs are 200 anywhere
            for n in c.node_names:
                request("PUT", f"{c.url(n)}/v1/kv/k{k}", VALUE)
        print(f"driver={driver} connections={args.connections} seconds={seconds} keys={KEYS}")
        print(f"{'op':4} {'target':9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
        results: dict[tuple[str, str], Result] = {}
        for op, lua in (("GET", GET_LUA), ("PUT", PUT_LUA)):
            for name, url in targets.items():
                if driver == "wrk":
                    r = run_wrk(url, lua, seconds, args.connections, workdir)
                else:
                    r = asyncio.run(_aiohttp_run(url, op, seconds, args.connections))
                results[(op, name)] = r
                print(f"{op:4} {name:9} {r.rps:9.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.errors:7d}")
        for op in ("GET", "PUT"):
            ours = results[(op, "balancer")].rps
            line = f"{op}: balancer/direct = {ours / results[(op, 'direct')].rps:.2f}"
            if (op, "haproxy") in results:
                line += f", balancer/haproxy = {ours / results[(op, 'haproxy')].rps:.2f}"
            print(line)
        print(request("GET", c.url("balancer") + "/v1/status").body.decode())
    finally:
        if haproxy is not None:
            haproxy.terminate()
            haproxy.wait(10)
        c.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
