"""How much the suite measures in each mode: full (`make bench`), quick (`make bench-quick`) and
tiny (the smoke test).

Rule: the modes differ only in counts and durations, never in what code runs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    mode: str
    runs: int  # rounds per measurement (the tables show the median and min–max)
    seconds: float  # one wrk run
    conns: int  # concurrent clients of the loaded stages
    list_sizes: tuple[int, int, int]  # tasks in the three list stages
    loss_writes: int  # creates per run of the lost-writes check
    lag_seconds: float  # steady load per lag run
    lag_rate: int  # writes/s of the steady load
    catchup_rows: int  # rows a wiped node copies back
    cli_tasks: int  # tasks `todo list` shows
    cli_runs: int
    profile: bool  # py-spy on dtm's busiest processes where a goal is missed


MODES = {
    "full": Plan("full", 3, 5, 32, (10, 1000, 10000), 2000, 5, 200, 500_000, 1000, 10, True),
    "quick": Plan("quick", 2, 2, 32, (10, 1000, 10000), 1000, 2, 200, 100_000, 1000, 5, True),
    "tiny": Plan("tiny", 1, 1, 8, (10, 100, 300), 100, 0.5, 100, 3000, 20, 2, False),
}
