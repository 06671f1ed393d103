"""Benchmark one real data node: durable PUT/s, GET/s, and the change feed at growing sizes.

    python bench/bench_node.py [--quick] [--dir DIR]

Starts `dtm node` on an ephemeral loopback port with its database in a temporary folder (on the
same disk as --dir), drives it with an aiohttp client at 64 concurrent requests, and prints a
table. The PUT rate is shown next to a raw SQLite loop on the same disk (one transaction per write,
WAL, synchronous=FULL). The feed is timed for the same 10 new changes at 10k rows and at 1M rows
(100k with --quick). Everything it starts is stopped, and the folder removed, on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import msgspec
import uvloop

CONCURRENCY = 64


@dataclass(frozen=True)
class Rate:
    per_s: float
    p50_ms: float
    p99_ms: float
    cpu_us: float  # node process CPU time per request


NODE_PID = 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_node(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    lines = ["[cluster]", 'data_dir = "data"', 'log_dir = "logs"', ""]
    lines += ["[[node]]", 'name = "bench1"', 'host = "127.0.0.1"', f"port = {port}", ""]
    for comp in ("balancer", "handler", "sync"):
        lines += [f"[{comp}]", 'host = "127.0.0.1"', f"port = {free_port()}", ""]
    config = root / "cluster.toml"
    config.write_text("\n".join(lines))
    log = (root / "node.log").open("wb")
    argv = [sys.executable, "-m", "dtm.run", "node", "--config", str(config), "--name", "bench1"]
    env = dict(os.environ, DTM_DIE_WITH_PARENT="1")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the node exited: see {root / 'node.log'}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("the node did not answer /healthz within 20 s") from None
            time.sleep(0.05)


def stop_node(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def raw_sqlite_rate(folder: Path, seconds: float) -> float:
    """Writes/s of one SQLite transaction per write (WAL, synchronous=FULL) on this disk."""
    conn = sqlite3.connect(folder / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE rows (key TEXT PRIMARY KEY, value BLOB, version INTEGER UNIQUE)")
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO rows VALUES (?, ?, ?)", (f"k{n}", b'{"n":1}', n))
        conn.execute("COMMIT")
        n += 1
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


async def drive(s: aiohttp.ClientSession, method: str, urls: list[str], body: bytes | None) -> Rate:
    """Send one request per url with CONCURRENCY in flight; rate and latency percentiles."""
    latencies: list[float] = []
    it = iter(urls)
    headers = {"Content-Type": "application/json"}

    async def worker() -> None:
        for url in it:
            t0 = time.perf_counter()
            async with s.request(method, url, data=body, headers=headers) as r:
                await r.read()
                if r.status != 200:
                    raise SystemExit(f"{method} {url} answered {r.status}")
            latencies.append(time.perf_counter() - t0)

    cpu0 = cpu_seconds(NODE_PID)
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - start
    cpu_us = (cpu_seconds(NODE_PID) - cpu0) / len(urls) * 1e6
    q = statistics.quantiles(latencies, n=100)
    return Rate(len(urls) / elapsed, q[49] * 1000, q[98] * 1000, cpu_us)


async def row_count(s: aiohttp.ClientSession, url: str) -> tuple[int, int]:
    async with s.get(f"{url}/v1/status") as r:
        st = await r.json()
    return st["live_rows"] + st["tombstones"], st["last_version"]


async def fill(s: aiohttp.ClientSession, url: str, upto: int) -> None:
    """Bring the node to ``upto`` rows, fast: replicated batches from a made-up peer."""
    have, _ = await row_count(s, url)
    base = (time.time_ns() // 1_000_000 - 3_600_000) << 16
    batch = 5000
    sent = 0
    enc = msgspec.json.Encoder()
    while have + sent < upto:
        n = min(batch, upto - have - sent)
        rows = [
            {
                "key": f"fill:{have + sent + i:09d}",
                "value": msgspec.Raw(b'{"text":"filler row","status":"open"}'),
                "deleted": False,
                "version": have + sent + i + 1,
                "hlc": base + have + sent + i,
                "origin": "filler",
            }
            for i in range(n)
        ]
        sent += n
        body = {"source": "filler", "epoch": "f", "source_version": sent, "rows": rows}
        async with s.post(f"{url}/v1/replicate", data=enc.encode(body)) as r:
            if r.status != 200:
                raise SystemExit(f"replicate answered {r.status}: {await r.text()}")


async def feed_time(s: aiohttp.ClientSession, url: str, reps: int) -> tuple[float, float]:
    """Median and p99 ms of `changes?since=V` where exactly 10 new changes follow V."""
    _, v = await row_count(s, url)
    for i in range(10):
        async with s.put(f"{url}/v1/kv/feed-{v}-{i}", json={"value": i}) as r:
            await r.read()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        async with s.get(f"{url}/v1/changes?since={v}") as r:
            page = await r.json()
        times.append((time.perf_counter() - t0) * 1000)
        if len(page["rows"]) != 10:
            raise SystemExit(f"expected 10 changes, got {len(page['rows'])}")
    q = statistics.quantiles(times, n=100)
    return statistics.median(times), q[98]


async def run(url: str, folder: Path, quick: bool) -> None:
    n_put = 5_000 if quick else 30_000
    n_get = 10_000 if quick else 60_000
    sizes = (10_000, 100_000) if quick else (10_000, 1_000_000)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as s:
        warm = [f"{url}/v1/kv/warm-{i}" for i in range(500)]
        await drive(s, "PUT", warm, b'{"value": {"text": "warm up"}}')
        body = b'{"value": {"text": "buy milk", "status": "open"}}'
        puts = await drive(s, "PUT", [f"{url}/v1/kv/put-{i}" for i in range(n_put)], body)
        gets = await drive(s, "GET", [f"{url}/v1/kv/put-{i % n_put}" for i in range(n_get)], None)
        raw = raw_sqlite_rate(folder, 1.0 if quick else 3.0)
        feeds = []
        for size in sizes:
            t0 = time.perf_counter()
            await fill(s, url, size)
            print(f"  (filled to {size:,} rows in {time.perf_counter() - t0:.1f} s)")
            feeds.append((size, *await feed_time(s, url, 200)))
        async with s.get(f"{url}/metrics") as r:
            metrics = await r.text()
    commits = ops = 0.0
    for line in metrics.splitlines():
        if line.startswith("dtm_node_commits_total "):
            commits = float(line.split()[1])
        if line.startswith("dtm_node_committed_ops_total "):
            ops = float(line.split()[1])

    print()
    print(f"data node, {CONCURRENCY} concurrent requests, {os.cpu_count()} cores")
    print(f"{'measure':<34}{'rate/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'node CPU us/req':>17}")
    print(
        f"{'durable PUT':<34}{puts.per_s:>10,.0f}{puts.p50_ms:>10.2f}{puts.p99_ms:>10.2f}"
        f"{puts.cpu_us:>17.0f}"
    )
    print(f"{'raw SQLite, 1 txn per write':<34}{raw:>10,.0f}")
    print(f"{'  PUT / raw SQLite':<34}{puts.per_s / raw:>10.1f}x")
    print(
        f"{'GET /v1/kv/{key}':<34}{gets.per_s:>10,.0f}{gets.p50_ms:>10.2f}{gets.p99_ms:>10.2f}"
        f"{gets.cpu_us:>17.0f}"
    )
    for size, med, p99 in feeds:
        label = f"changes?since= (10 new) @ {size:,}"
        print(f"{label:<34}{'':>10}{med:>10.2f}{p99:>10.2f}")
    if commits:
        print(f"{'mean writes per commit':<34}{ops / commits:>10.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (100k rows, not 1M)")
    parser.add_argument("--dir", default=None, help="where to put the databases (default: tmp)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="dtm-bench-node-", dir=args.dir))
    proc = None
    global NODE_PID
    try:
        proc, url = start_node(folder)
        NODE_PID = proc.pid
        uvloop.run(run(url, folder, args.quick))
    finally:
        if proc is not None:
            stop_node(proc)
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
