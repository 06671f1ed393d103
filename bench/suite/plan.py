"""How much the suite measures in each mode: full (`python -m bench`), quick (`--quick`) and tiny
(the smoke test's counts).

Rule: the modes differ only in counts and durations, never in what code runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Plan:
    mode: str
    runs: int  # runs per measurement (the table shows their median and min–max)
    seconds: int  # one wrk run
    node_conns: int  # concurrent connections at one data node (and at Redis beside it)
    conns: int  # concurrent connections through the balancer and the handler
    big_rows: int  # the large table: changes feed, catch-up, memory
    small_rows: int  # the small table of the changes feed
    feed_reps: int  # `changes` requests per run
    redis_requests: int  # requests per redis-benchmark run
    sqlite_seconds: float
    list_tasks: int  # tasks in the handler's list (create/list group)
    cli_tasks: int  # tasks `todo list` shows
    cli_runs: int
    lag_seconds: float  # steady load per lag run
    lag_rate: int  # writes/s of the steady load
    round_reps: int  # 10-change sync rounds timed per size
    profile: bool  # run py-spy on a component whose goal is missed
    workdir: Path = Path("/tmp")


FULL = Plan(
    mode="full",
    runs=3,
    seconds=2,
    node_conns=64,
    conns=32,
    big_rows=1_000_000,
    small_rows=10_000,
    feed_reps=200,
    redis_requests=100_000,
    sqlite_seconds=2.0,
    list_tasks=100,
    cli_tasks=1000,
    cli_runs=10,
    lag_seconds=5.0,
    lag_rate=200,
    round_reps=10,
    profile=True,
)

QUICK = Plan(
    mode="quick",
    runs=3,
    seconds=1,
    node_conns=64,
    conns=32,
    big_rows=100_000,
    small_rows=10_000,
    feed_reps=100,
    redis_requests=50_000,
    sqlite_seconds=0.5,
    list_tasks=100,
    cli_tasks=1000,
    cli_runs=5,
    lag_seconds=1.5,
    lag_rate=200,
    round_reps=10,
    profile=True,
)

TINY = Plan(
    mode="tiny",
    runs=1,
    seconds=1,
    node_conns=16,
    conns=16,
    big_rows=3_000,
    small_rows=1_000,
    feed_reps=10,
    redis_requests=2_000,
    sqlite_seconds=0.1,
    list_tasks=20,
    cli_tasks=20,
    cli_runs=2,
    lag_seconds=0.5,
    lag_rate=100,
    round_reps=2,
    profile=False,
)

MODES = {"full": FULL, "quick": QUICK, "tiny": TINY}
