"""The goals the figures are held against, each met or missed by this run's numbers.

Rule: a goal against the original compares the paired per-round ratio of the two systems from
the same run; a goal whose figure was not measured is "not measured", never met.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.model import Goal, Plan, Results
from bench.paths import Stage, row_name, stages
from bench.repl import CATCHUP, LAG, LOST


def times(v: float) -> str:
    return f"{v:.2f}×" if v >= 0.1 else f"{v:.3f}×"


def _stat(res: Results, name: str, attr: str = "value") -> float | None:
    row = res.find(name)
    return row.stat(attr) if row else None


def _total(res: Results, name: str, attr: str) -> int:
    row = res.find(name)
    return int(sum(getattr(r, attr) for r in row.runs)) if row else 0


def _versus(res: Results, st: Stage, attr: str, fmt: Callable[[float], str]) -> str:
    """ "dtm's figure vs the original's" for one stage."""
    return " vs ".join(fmt(_stat(res, row_name(s, st), attr) or 0) for s in ("dtm", "original"))


def _path_goals(res: Results, plan: Plan) -> list[Goal]:
    out = []
    by_goal = {st.goal: st for st in stages(plan) if st.goal}
    for key, least in (("create32", 1.5), ("list-small", 1.5), ("list-mid", 1.5), ("list-big", 1)):
        st = by_goal[key]
        r = res.ratio(row_name("dtm", st), row_name("original", st))
        text = f"{st.title} through the full path ≥ {least:g}× the original"
        shown = f"{times(r or 0)} ({_versus(res, st, 'value', lambda v: f'{v:,.0f}/s')})"
        out.append(_goal(key, text, r, (r or 0) >= least, shown))
    st = by_goal["create1"]
    r = res.ratio(row_name("dtm", st), row_name("original", st), "p50_ms")
    shown = f"{_versus(res, st, 'p50_ms', lambda v: f'{v:.2f} ms')} ({times(r or 0)})"
    out.append(
        _goal("create1", "create p50 at one client ≤ the original's", r, (r or 9) <= 1, shown)
    )
    st = by_goal["create32"]
    ours, theirs = (_stat(res, row_name(s, st), "cpu_sum") for s in ("dtm", "original"))
    shown = _versus(res, st, "cpu_sum", lambda v: f"{v:,.0f} µs")
    text = f"server CPU per create ({st.conns} clients), every process, ≤ the original's"
    out.append(_goal("cpu", text, ours and theirs, (ours or 0) <= (theirs or 0), shown))
    return out


def _goal(key: str, text: str, value: float | None, met: bool, fmt: str) -> Goal:
    shown = "not measured" if value is None else fmt.format(value)
    return Goal(key, text, shown, None if value is None else met)


def evaluate(res: Results, plan: Plan) -> list[Goal]:
    p99, rate = _stat(res, f"dtm: {LAG}"), _stat(res, f"dtm: {CATCHUP}")
    ms = _stat(res, f"CLI: todo list ({plan.cli_tasks:,} tasks)")
    lost, acked = (_total(res, f"dtm: {LOST}", a) for a in ("value", "requests"))
    theirs = [_total(res, f"original: {LOST}", a) for a in ("value", "requests")]
    cu = "catch-up of a wiped node ≥ 60k rows/s"
    cli = f"`todo list` of {plan.cli_tasks:,} tasks < 100 ms as a process"
    shown = f"{lost:,} of {acked:,} acknowledged creates (the original lost {theirs[0]:,} of "
    shown += f"{theirs[1]:,})"
    return [
        *_path_goals(res, plan),
        _goal("lag", "replication lag p99 < 50 ms", p99, (p99 or 0) < 50, "{:,.1f} ms"),
        _goal("lost", "0 acknowledged writes lost", acked or None, lost == 0, shown),
        _goal("catchup", cu, rate, (rate or 0) >= 6e4, "{:,.0f} rows/s"),
        _goal("cli", cli, ms, (ms or 0) < 100, "{:,.0f} ms"),
    ]


def attach_profiles(res: Results) -> None:
    for g in res.goals:
        g.profile = res.profiles.get(g.key, "") if g.met is False else ""
