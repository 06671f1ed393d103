"""Benchmark the sync process: replication lag, catch-up of a wiped node, cost of one round.

    python bench/bench_sync.py [--quick]

Starts real `dtm node` and `dtm sync` processes on ephemeral loopback ports (tests/harness.py)
with their data in a temporary folder, and prints:

- replication lag (write acknowledged on store1 -> row in store2's feed), p50/p99, under a steady
  write load, in long-poll mode and in 500 ms interval mode;
- catch-up: store2 starts empty next to a store1 holding N rows (1M; 100k with --quick): rows/s;
- one round with 10 new changes at 10k rows vs at N rows: the time until store2 holds them.

Everything it starts is stopped, and the folder removed, on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import msgspec
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import LocalCluster, request, wait_until

LOAD_PER_S = 200
LAG_WRITES = 600


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


async def lag_run(c: LocalCluster, writes: int) -> list[float]:
    """Steady PUTs on store1; a long-poll reader of store2's feed notes when each key arrives."""
    s1, s2 = c.node_urls
    acked: dict[str, float] = {}
    seen: dict[str, float] = {}
    top = request("GET", s2 + "/v1/status").json()["last_version"]
    async with aiohttp.ClientSession() as http:

        async def reader() -> None:
            since = top
            while len(seen) < writes:
                async with http.get(
                    f"{s2}/v1/changes", params={"since": since, "limit": 10000, "wait": 1000}
                ) as r:
                    page = msgspec.json.decode(await r.read())
                now = time.perf_counter()
                for row in page["rows"]:
                    seen.setdefault(row["key"], now)
                    since = max(since, row["version"])

        async def writer() -> None:
            start = time.perf_counter()
            for i in range(writes):
                due = start + i / LOAD_PER_S
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                key = f"lag{time.monotonic_ns()}-{i}"
                async with http.put(f"{s1}/v1/kv/{key}", json={"value": i}) as r:
                    assert r.status == 200, await r.text()
                acked[key] = time.perf_counter()

        rd = asyncio.create_task(reader())
        await writer()
        await asyncio.wait_for(rd, 60)
    return [(seen[k] - t) * 1000 for k, t in acked.items()]


async def load_rows(url: str, n: int, prefix: str) -> None:
    """Put n rows on a node fast: replicate batches from a loader (no sync involved)."""
    origin_hlc = time.time_ns() // 1_000_000 << 16
    async with aiohttp.ClientSession() as http:
        sem = asyncio.Semaphore(4)

        async def one(lo: int) -> None:
            rows = [
                {
                    "key": f"{prefix}{i:08d}",
                    "value": {"text": f"task {i}", "status": "open"},
                    "deleted": False,
                    "version": i + 1,
                    "hlc": origin_hlc + i,
                    "origin": "loader",
                }
                for i in range(lo, min(n, lo + 2000))
            ]
            body = {"source": "loader", "epoch": "bench", "source_version": 0, "rows": rows}
            async with sem, http.post(f"{url}/v1/replicate", json=body) as r:
                assert r.status == 200, await r.text()

        await asyncio.gather(*(one(lo) for lo in range(0, n, 2000)))


def last_version(url: str) -> int:
    """A node's last version, from its feed (cheap at any table size)."""
    page = request("GET", url + "/v1/changes?since=1000000000&limit=1").json()
    v: int = page["last_version"]
    return v


def round_cost(c: LocalCluster, repeats: int = 15) -> float:
    """Median ms from the 10th of 10 new writes acknowledged on store1 to all 10 in store2."""
    s1, s2 = c.node_urls
    times: list[float] = []
    for r in range(repeats):
        since = last_version(s2)
        for i in range(10):
            request("PUT", f"{s1}/v1/kv/round{r}-{i}-{time.monotonic_ns()}", {"value": i})
        t0 = time.perf_counter()  # from the 10th acknowledgement
        got = 0
        while got < 10:
            page = request("GET", f"{s2}/v1/changes?since={since}&limit=100&wait=5000").json()
            got += len(page["rows"])
            since = max([since, *(row["version"] for row in page["rows"])])
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="100k rows instead of 1M")
    args = ap.parse_args()
    big = 100_000 if args.quick else 1_000_000
    root = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    results: list[tuple[str, str]] = []
    clusters: list[LocalCluster] = []
    try:
        for mode, extra in (("long-poll", ()), ("interval 500 ms", ("--interval", "500"))):
            c = LocalCluster(root / f"lag-{len(clusters)}", nodes=2)
            clusters.append(c)
            c.start_nodes()
            c.start("sync", *extra)
            lags = uvloop.run(lag_run(c, LAG_WRITES))
            results.append(
                (
                    f"replication lag, {mode}, {LOAD_PER_S} writes/s",
                    f"p50 {pct(lags, 50):.1f} ms, p99 {pct(lags, 99):.1f} ms",
                )
            )
            c.stop_all()

        for n in (10_000, big):
            c = LocalCluster(root / f"rows-{n}", nodes=2, sections={"sync": {"batch": 5000}})
            clusters.append(c)
            c.start_nodes()
            uvloop.run(load_rows(c.node_urls[0], n, "row"))
            t0 = time.perf_counter()
            c.start("sync")
            url2 = c.node_urls[1]
            wait_until(lambda u=url2, k=n: last_version(u) >= k, 600, 0.01, "catch-up")
            dt = time.perf_counter() - t0
            if n == big:
                results.append((f"catch-up of an empty node, {n} rows", f"{n / dt:,.0f} rows/s"))
            results.append(
                (f"one round, 10 new changes, table of {n} rows", f"{round_cost(c):.1f} ms")
            )
            c.stop_all()
    finally:
        for c in clusters:
            c.stop_all()
        shutil.rmtree(root, ignore_errors=True)
    width = max(len(k) for k, _ in results)
    for k, v in results:
        print(f"{k.ljust(width)}  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
