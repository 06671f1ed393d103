"""The reference systems: Redis by redis-benchmark, a raw SQLite loop, and the Go original's
numbers quoted from another run.

Rule: a reference is measured in the same suite run, on the same disk and cores, at the same
client concurrency as what it is compared with; the Go row is the one exception and says so.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import subprocess
import time
from pathlib import Path

from bench.suite import env
from bench.suite.model import Row, Run, percentile

# The original Go version, built from its own sources and measured on this machine in another run
# (in-memory stores, through its balancer, wrk -c32); it lost half of its acknowledged creates.
GO_LIST_RPS = 5600.0
GO_CREATE_RPS = 3300.0
GO_LAG_P50_MS = 280.0
GO_LAG_P99_MS = 500.0
GO_NOTE = (
    "the Go original, from another run on this machine (in-memory stores); it lost half of its "
    "acknowledged creates"
)


def go_row(name: str, value: float, unit: str, p50: float | None = None) -> Row:
    return Row(name, unit, [Run(value, p50)], note=GO_NOTE, fixed=True)


def redis_benchmark(port: int, tests: str, conns: int, requests: int) -> dict[str, Run]:
    """redis-benchmark against ``port`` from the load core: test name -> Run (rate, p50, p99)."""
    argv = ["redis-benchmark", "-p", str(port), "-c", str(conns), "-n", str(requests)]
    argv += ["-t", tests, "-r", "100000", "-d", "60", "--csv"]
    out = subprocess.run(
        env.pinned(argv, env.LOAD_CPU), capture_output=True, text=True, timeout=300, check=False
    ).stdout
    found: dict[str, Run] = {}
    for rec in csv.DictReader(io.StringIO(out)):
        try:
            found[rec["test"].upper()] = Run(
                float(rec["rps"]), float(rec["p50_latency_ms"]), float(rec["p99_latency_ms"])
            )
        except (KeyError, ValueError):
            continue
    if not found:
        raise RuntimeError(f"redis-benchmark printed nothing usable:\n{out[-1000:]}")
    return found


def raw_sqlite(folder: Path, seconds: float) -> Run:
    """Writes/s of one SQLite transaction per write (WAL, synchronous=FULL) on ``folder``'s disk,
    with the latency of each commit."""
    path = folder / f"raw-{time.monotonic_ns()}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE rows (key TEXT PRIMARY KEY, value BLOB, version INTEGER UNIQUE)")
        lat: list[float] = []
        n = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            t0 = time.perf_counter()
            conn.execute("BEGIN")
            conn.execute("INSERT INTO rows VALUES (?, ?, ?)", (f"k{n}", b'{"n":1}', n))
            conn.execute("COMMIT")
            lat.append(time.perf_counter() - t0)
            n += 1
        elapsed = time.perf_counter() - start
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    return Run(n / elapsed, percentile(lat, 50) * 1000, percentile(lat, 99) * 1000)
