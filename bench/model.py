"""What a run measures (a `Plan` per mode) and what it found: runs, rows, groups and goals.

Rule: the modes differ only in counts and durations, never in what code runs; a figure is the
median of its runs with the min–max beside it; a ratio of two rows is the median of the per-round
ratios (round i of one over round i of the other, both from this run).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of ``samples`` by nearest rank; NaN when empty."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


def median(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(vals) if vals else None


@dataclass
class Run:
    """One run of one measurement: a rate or a time, with what was seen of the servers."""

    value: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0  # non-2xx answers, socket errors, or writes lost
    requests: int = 0
    cpu_us: dict[str, float] = field(default_factory=dict)  # server CPU per request, by process
    rss_mib: dict[str, float] = field(default_factory=dict)  # peak resident set, by process

    @property
    def cpu_sum(self) -> float | None:
        return sum(self.cpu_us.values()) if self.cpu_us else None


@dataclass
class Row:
    """One line of a group's table."""

    name: str
    unit: str
    runs: list[Run] = field(default_factory=list)
    note: str = ""
    not_measured: str = ""

    def stat(self, attr: str = "value") -> float | None:
        """The median over the runs of ``attr`` (value, p50_ms, p99_ms, cpu_sum)."""
        return median(getattr(r, attr) for r in self.runs)

    @property
    def span(self) -> tuple[float, float] | None:
        vals = [r.value for r in self.runs if not math.isnan(r.value)]
        return (min(vals), max(vals)) if vals else None

    def by_process(self, attr: str = "cpu_us") -> dict[str, float]:
        """The median per process of ``cpu_us`` or ``rss_mib`` over the runs."""
        names = dict.fromkeys(k for r in self.runs for k in getattr(r, attr))
        return {n: median(getattr(r, attr).get(n) for r in self.runs) or 0.0 for n in names}


@dataclass
class Group:
    key: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)  # raw samples for the charts

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row


@dataclass
class Goal:
    key: str
    text: str
    shown: str  # the measured figure as the page shows it
    met: bool | None  # None: not measured
    profile: str = ""  # where the time goes, when missed and profiled


@dataclass
class Results:
    mode: str
    command: str
    machine: dict[str, str]
    seconds: float = 0.0
    groups: list[Group] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    profiles: dict[str, str] = field(default_factory=dict)  # goal key -> top frames

    def find(self, name: str) -> Row | None:
        return next((r for g in self.groups for r in g.rows if r.name == name), None)

    def group(self, key: str) -> Group | None:
        return next((g for g in self.groups if g.key == key), None)

    def paired(self, name: str, ref: str, attr: str = "value") -> list[float]:
        """Round i of ``name`` over round i of ``ref``, for every round both measured."""
        a, b = self.find(name), self.find(ref)
        if a is None or b is None:
            return []
        n = min(len(a.runs), len(b.runs))
        pairs = zip(
            [getattr(r, attr) for r in a.runs[:n]],
            [getattr(r, attr) for r in b.runs[:n]],
            strict=True,
        )
        return [x / y for x, y in pairs if x is not None and y]

    def ratio(self, name: str, ref: str, attr: str = "value") -> float | None:
        return median(self.paired(name, ref, attr))

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for g, gj in zip(self.groups, out["groups"], strict=True):
            for r, rj in zip(g.rows, gj["rows"], strict=True):
                rj.update(median=r.stat(), p50_ms=r.stat("p50_ms"), cpu_sum_us=r.stat("cpu_sum"))
            gj["series"] = {k: v[:5000] for k, v in g.series.items()}
        return out


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
    memory_sizes: tuple[int, ...]  # tasks in the whole lists the handler's memory is read at
    profile: bool  # py-spy on dtm's busiest processes where a goal is missed


MODES = {
    "full": Plan(
        "full",
        3,
        5,
        32,
        (10, 1000, 10000),
        2000,
        5,
        200,
        500_000,
        1000,
        10,
        (10_000, 100_000, 1_000_000),
        True,
    ),
    "quick": Plan(
        "quick",
        2,
        2,
        32,
        (10, 1000, 10000),
        1000,
        2,
        200,
        100_000,
        1000,
        5,
        (10_000, 100_000),
        True,
    ),
    "tiny": Plan("tiny", 1, 1, 8, (10, 100, 300), 100, 0.5, 100, 3000, 20, 2, (300, 3000), False),
}
