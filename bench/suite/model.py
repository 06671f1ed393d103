"""The results model of the benchmark suite: runs, statistics, rows, groups and goals.

Rule: a measured figure is the median of its runs with the min–max beside it; a ratio is always
median over median of two rows measured in the same suite run (or against a fixed row that says
it comes from another run).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of ``samples`` by nearest rank; NaN when empty."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


@dataclass
class Run:
    """One run of one measurement: a rate or a time, and its latency percentiles if known."""

    value: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0
    cpu_us: float | None = None  # CPU time of a watched server process per request
    requests: int = 0  # requests the run completed (0: not counted)


@dataclass
class Row:
    """One line of a group's table."""

    name: str
    unit: str  # "req/s", "rows/s", "ms", "MiB"
    runs: list[Run] = field(default_factory=list)
    note: str = ""
    refs: list[str] = field(default_factory=list)  # rows (in any group) this one is divided by
    fixed: bool = False  # a quoted number from another run, not measured here
    not_measured: str = ""  # why there are no runs

    @property
    def median(self) -> float | None:
        vals = [r.value for r in self.runs if not math.isnan(r.value)]
        return statistics.median(vals) if vals else None

    @property
    def lo(self) -> float | None:
        vals = [r.value for r in self.runs if not math.isnan(r.value)]
        return min(vals) if vals else None

    @property
    def hi(self) -> float | None:
        vals = [r.value for r in self.runs if not math.isnan(r.value)]
        return max(vals) if vals else None

    def _median_of(self, attr: str) -> float | None:
        vals = [getattr(r, attr) for r in self.runs]
        vals = [v for v in vals if v is not None and not math.isnan(v)]
        return statistics.median(vals) if vals else None

    @property
    def p50_ms(self) -> float | None:
        return self._median_of("p50_ms")

    @property
    def p99_ms(self) -> float | None:
        return self._median_of("p99_ms")

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.runs)


@dataclass
class Group:
    """One table: the rows of one kind of measurement and how they were made."""

    key: str
    title: str
    method: str = ""  # how it was measured (tool, concurrency, pinning, counts)
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    not_measured: str = ""
    series: dict[str, list[float]] = field(default_factory=dict)  # raw data for charts

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def row(self, name: str) -> Row | None:
        for r in self.rows:
            if r.name == name:
                return r
        return None


@dataclass
class Goal:
    """A goal from the issue, held against a measured figure."""

    text: str
    value: float | None
    shown: str  # the measured figure as the page shows it
    met: bool | None  # None: not measured
    where_time_goes: str = ""
    proposal: str = ""


@dataclass
class Results:
    mode: str
    command: str
    machine: dict[str, str]
    seconds: float = 0.0
    groups: list[Group] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    profiles: dict[str, str] = field(default_factory=dict)  # component -> top frames

    def find(self, name: str) -> Row | None:
        for g in self.groups:
            r = g.row(name)
            if r is not None:
                return r
        return None

    def group(self, key: str) -> Group | None:
        for g in self.groups:
            if g.key == key:
                return g
        return None

    def ratio(self, row: Row, ref_name: str) -> float | None:
        """``row``'s median over the median of the row named ``ref_name``, if both exist."""
        ref = self.find(ref_name)
        if ref is None or not ref.median or row.median is None:
            return None
        return row.median / ref.median

    def ratio_of(self, name: str, ref_name: str) -> float | None:
        row = self.find(name)
        return None if row is None else self.ratio(row, ref_name)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mode": self.mode,
            "command": self.command,
            "machine": self.machine,
            "seconds": round(self.seconds, 1),
            "groups": [],
            "goals": [asdict(g) for g in self.goals],
            "profiles": self.profiles,
        }
        for g in self.groups:
            rows = []
            for r in g.rows:
                d = asdict(r)
                d.update(
                    median=r.median,
                    min=r.lo,
                    max=r.hi,
                    p50_ms=r.p50_ms,
                    p99_ms=r.p99_ms,
                    ratios={ref: self.ratio(r, ref) for ref in r.refs},
                )
                rows.append(d)
            out["groups"].append(
                {
                    "key": g.key,
                    "title": g.title,
                    "method": g.method,
                    "not_measured": g.not_measured,
                    "notes": g.notes,
                    "rows": rows,
                    "series": {k: v[:5000] for k, v in g.series.items()},
                }
            )
        return out
