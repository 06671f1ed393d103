"""docs/benchmarks.md from one suite run: machine, goals, closing note, charts, one table per
group, profiles, and how to reproduce.

Rule: the page is generated whole from `Results`; every number on it is in results.json too.
"""

from __future__ import annotations

import math
import time

from bench.suite import g_node, g_paths, g_sync
from bench.suite.model import Goal, Results, Row


def num(v: float | None, unit: str) -> str:
    if v is None or math.isnan(v):
        return "–"
    if unit.startswith("ms"):
        return f"{v:,.2f}" if v < 10 else f"{v:,.1f}" if v < 100 else f"{v:,.0f}"
    if unit == "MiB":
        return f"{v:,.0f}"
    return f"{v:,.0f}"


def times(r: float) -> str:
    """A ratio with enough digits to be told from zero."""
    return f"{r:.2f}×" if r >= 0.1 else f"{r:.3f}×"


def _ratio(res: Results, row: Row) -> str:
    parts = []
    for ref in row.refs:
        r = res.ratio(row, ref)
        if r is not None:
            parts.append(f"**{times(r)}** {ref}")
    return "; ".join(parts) or ""


def table(res: Results, rows: list[Row]) -> list[str]:
    out = [
        "| measure | median | min–max | unit | p50 ms | p99 ms | ratio | note |",
        "| --- | ---: | ---: | --- | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        if r.not_measured:
            out.append(f"| {r.name} | not measured | | {r.unit} | | | | {r.not_measured} |")
            continue
        note = r.note
        if r.errors:
            note = (note + "; " if note else "") + f"{r.errors} errors or unseen writes"
        span = "" if r.fixed or len(r.runs) < 2 else f"{num(r.lo, r.unit)}–{num(r.hi, r.unit)}"
        runs = "" if r.fixed else f" ({len(r.runs)} runs)"
        out.append(
            f"| {r.name} | {num(r.median, r.unit)} | {span}{runs} | {r.unit} | "
            f"{num(r.p50_ms, 'ms')} | {num(r.p99_ms, 'ms')} | {_ratio(res, r)} | {note} |"
        )
    return out


def _goal_line(g: Goal) -> str:
    verdict = {True: "met", False: "**missed**", None: "not measured"}[g.met]
    return f"| {g.text} | {g.shown} | {verdict} |"


def closing(res: Results) -> list[str]:
    """The closing note: the ratios in words, and what would close each missed goal."""

    def r(a: str, b: str) -> str:
        v = res.ratio_of(a, b)
        return "–" if v is None else times(v)

    def m(name: str, unit: str) -> str:
        row = res.find(name)
        return "not measured" if row is None or row.median is None else num(row.median, unit)

    lines = [
        f"- A durable PUT on one node: {m(g_node.PUT, 'req/s')}/s, {r(g_node.PUT, g_node.R_AOF)} "
        f"of Redis with `appendfsync always` and {r(g_node.PUT, g_node.RAW)} of a raw SQLite "
        f"loop (one transaction per write) on the same disk; GET {r(g_node.GET, g_node.R_GET)} "
        f"of Redis GET.",
        f"- Our balancer: GET {r(g_paths.bal_row('GET', 'through ours'), g_paths.bal_row('GET', 'through HAProxy'))} "  # noqa: E501
        f"and PUT {r(g_paths.bal_row('PUT', 'through ours'), g_paths.bal_row('PUT', 'through HAProxy'))} "  # noqa: E501
        f"of HAProxy's throughput in front of the same nodes (both bounded by the nodes on the "
        f"shared core); by the proxy's own CPU per request, ours reaches "
        f"{r(g_paths.cpu_row('GET', 'through HAProxy'), g_paths.cpu_row('GET', 'through ours'))} "
        f"(GET) and "
        f"{r(g_paths.cpu_row('PUT', 'through HAProxy'), g_paths.cpu_row('PUT', 'through ours'))} "
        f"(PUT) of HAProxy's rate per core.",
        f"- The full path (CLI's handler → balancer → node): create "
        f"{r(g_paths.path_row('create', 'through the handler'), g_paths.path_row('create', 'direct to a node'))} "  # noqa: E501
        f"and list {r(g_paths.path_row('list', 'through the handler'), g_paths.path_row('list', 'direct to a node'))} "  # noqa: E501
        f"of direct-to-node; against the Go original's quoted numbers, create "
        f"{r(g_paths.path_row('create', 'through the handler'), g_paths.GO_CREATE)} and list "
        f"{r(g_paths.path_row('list', 'through the handler'), g_paths.GO_LIST)}, without losing "
        f"acknowledged writes.",
        f"- Replication lag p99: {m(g_sync.LAG_LONGPOLL, 'ms')} ms long-polling, "
        f"{m(g_sync.LAG_INTERVAL, 'ms')} ms with the 500 ms interval "
        f"({r(g_sync.LAG_LONGPOLL, g_sync.LAG_INTERVAL)}), Go original 500 ms. Catch-up of a "
        f"wiped node: {m(g_sync.CATCHUP, 'rows/s')} rows/s.",
    ]
    lst = next((x for g in res.groups for x in g.rows if x.name.startswith("CLI: todo list")), None)
    if lst is not None and lst.median is not None:
        lines.append(
            f"- `todo list` as a process: {num(lst.median, 'ms')} ms, "
            f"{res.ratio(lst, lst.refs[0]) or 0:.2f}× `python -c pass`."
        )
    missed = [g for g in res.goals if g.met is False]
    if missed:
        lines.append("")
        lines.append("Missed goals, and what we believe would close them:")
        lines.append("")
        for g in missed:
            lines.append(f"- *{g.text}* ({g.shown}): {g.proposal}")
    return lines


def render(res: Results, charts: list[tuple[str, str]]) -> str:
    mode_note = {
        "full": "the full suite, `python -m bench` (`make bench`)",
        "quick": "**the quick suite, `python -m bench --quick` (`make bench-quick`): smaller "
        "tables (100,000 rows instead of 1,000,000) and 1 s load runs — not the full run**",
        "tiny": "**the smoke test's tiny counts: not a measurement**",
    }[res.mode]
    out = [
        "# Benchmarks",
        "",
        f"Generated by {mode_note} on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} in "
        f"{res.seconds:.0f} s; every figure below comes from that one run on the machine below, "
        "and every ratio divides two figures of that run (the Go original's row alone is quoted "
        "from another run). The same numbers are in `bench/results.json`. Do not edit by hand: "
        f"run `{res.command}` again.",
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
    ]
    out += [f"| {k} | {v} |" for k, v in res.machine.items()]
    out += [
        "",
        "## Goals",
        "",
        "| goal | measured | verdict |",
        "| --- | --- | --- |",
    ]
    out += [_goal_line(g) for g in res.goals]
    where = [g for g in res.goals if g.met is False]
    if where:
        out += [
            "",
            "Where the time goes for each missed goal (py-spy on the component, or not):",
            "",
        ]
        first_with: dict[str, str] = {}
        for goal in where:
            why = goal.where_time_goes
            if why in first_with and not why.startswith("unprofiled"):
                out.append(f"- *{goal.text}*: the same profile as for *{first_with[why]}*")
            else:
                out.append(f"- *{goal.text}*: {why}")
                first_with.setdefault(why, goal.text)
    out += ["", "## Closing note", "", *closing(res), ""]
    if charts:
        out += ["## Charts", ""]
        out += [f"![{title}]({path})" for path, title in charts]
        out.append("")
    for g in res.groups:
        out += [f"## {g.title}", ""]
        if g.not_measured:
            out += [g.not_measured, ""]
            continue
        if g.method:
            out += [g.method, ""]
        base = res.command.split(" --only")[0]
        key = "catchup" if g.key == "memory" else g.key
        out += [f"Produced by `{base}`; this group alone: `{base} --only {key}`.", ""]
        out += table(res, g.rows)
        out.append("")
        out += [f"- {n}" for n in g.notes]
        if g.notes:
            out.append("")
    if res.profiles:
        out += ["## Profiles", "", "py-spy, a few seconds during one load run:", ""]
        out += [f"- **{k}**: {v}" for k, v in res.profiles.items()]
        out.append("")
    out += [
        "## How to reproduce",
        "",
        "```",
        "make bench          # python -m bench: the full suite, at most 10 minutes",
        "make bench-quick    # python -m bench --quick: smaller counts, at most 2 minutes",
        "python -m bench --only node,balancer   # some groups (node balancer handler cli lag "
        "catchup)",
        "```",
        "",
        "The code: `bench/suite/` — `loadgen.py` (the one load generator: wrk and its Lua "
        "scripts), `refs.py` (Redis, raw SQLite, the Go row), `servers.py` (our components, "
        "HAProxy, Redis), one module per group (`g_node.py`, `g_paths.py`, `g_cli.py`, "
        "`g_sync.py`, `g_memory.py`), `goals.py`, `report.py`, `charts.py`, and the results "
        "model `model.py`.",
        "",
        "The suite installs what is missing (Debian: wrk, redis-server, haproxy, hyperfine; "
        "PyPI: matplotlib, py-spy), starts every server itself on 127.0.0.1 with free ports, and "
        "stops all of them when it ends.",
        "",
    ]
    return "\n".join(out)
