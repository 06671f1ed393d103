"""docs/benchmarks.md from one run: bench/page.md (the prose) with this run's tables filled in.

Rule: the template holds every sentence; code only fills ``{{name}}`` with this run's figures and
keeps a ``<!-- if missed KEY ... -->`` block only when one of its goals was missed in this run.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict
from pathlib import Path

from bench import memory
from bench.goals import times
from bench.model import Group, Plan, Results, Row
from bench.paths import row_name, stages
from bench.refs import pairs
from bench.repl import CATCHUP, LAG, LOST

TEMPLATE = Path(__file__).with_name("page.md")
MODE = {
    "full": "the full suite, `make bench`",
    "quick": "**the quick suite (`make bench-quick`): fewer and shorter runs, not the full run**",
    "tiny": "**the smoke test's tiny counts: not a measurement**",
}
VERDICT = {True: "met", False: "**missed**", None: "not measured"}


def num(v: float | None, digits: int = 0) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


def md(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def _figures(row: Row | None) -> list[str]:
    """Rate (min–max), p50 / p99, CPU per process, their sum, and the capacity 1e6 / sum."""
    if row is None or not row.runs:
        return [row.not_measured if row else "not measured", "", "", "", ""]
    lo, hi = row.span or (0.0, 0.0)
    total = row.stat("cpu_sum")
    return [
        f"{num(row.stat())} ({num(lo)}–{num(hi)})" + (f" ({row.note})" if row.note else ""),
        f"{num(row.stat('p50_ms'), 2)} / {num(row.stat('p99_ms'), 2)}",
        " + ".join(f"{n} {v:,.0f}" for n, v in row.by_process().items()),
        num(total),
        num(1e6 / total) if total else "–",
    ]


def paths_table(res: Results, plan: Plan) -> str:
    header = ["stage", "system", "req/s (min–max)", "p50 / p99 ms", "dtm ÷ original, per round"]
    header += ["server CPU µs per request, by process", "sum µs", "one-core capacity /s"]
    rows = []
    for st in stages(plan):
        ours, theirs = row_name("dtm", st), row_name("original", st)
        pair = res.paired(ours, theirs)
        ratio = f"**{times(res.ratio(ours, theirs) or 0)}**" if pair else ""
        ratio += f" ({times(min(pair))}–{times(max(pair))})" if len(pair) > 1 else ""
        for system, name, r in (("dtm", ours, ratio), ("original ⚠", theirs, "")):
            f = _figures(res.find(name))
            rows.append([st.title, system, f[0], f[1], r, *f[2:]])
    return md(header, rows)


def rss_line(res: Results, plan: Plan) -> str:
    found = []
    for system in ("dtm", "original"):
        row = res.find(row_name(system, stages(plan)[-1]))  # the largest list
        each = ", ".join(
            f"{n} {v:,.0f}" for n, v in (row.by_process("rss_mib") if row else {}).items()
        )
        found += [f"{system}: {each}"] if each else []
    return "; ".join(found) or "not measured"


def _memory(row: Row | None) -> str:
    if row is None or not row.runs:
        return row.not_measured if row and row.not_measured else "not measured"
    r = row.runs[-1]
    shown = f"{num(r.rss_mib['before'])} → {num(r.rss_mib['peak'])} (+{r.value:,.1f})"
    return shown + (f" ({row.note})" if row.note else "")


def memory_table(res: Results, plan: Plan) -> str:
    """Per list size: the answer's size and the handler's memory with and without kept pages."""
    rows = []
    for tasks in plan.memory_sizes:
        kept, none = (res.find(memory.row_name(tasks, k)) for k in (True, False))
        size = f"{kept.runs[-1].requests / 1e6:,.1f} MB" if kept and kept.runs else "–"
        rows.append([f"{tasks:,}", size, _memory(kept), _memory(none)])
    header = ["tasks", "answer", "handler MiB, before → peak: pages kept as deployed"]
    return md([*header, "the same, no page kept"], rows)


def repl_table(res: Results) -> str:
    def cells(what: str, fmt: str, systems: tuple[str, ...] = ("dtm", "original")) -> list[str]:
        out = []
        for s in systems:
            r = res.find(f"{s}: {what}")
            ok = r is not None and r.runs
            out.append(", ".join(fmt.format(r=x) for x in r.runs) if r and ok else "not measured")
        return out

    rows = [
        ["lag p50 / p99 ms, per run", *cells(LAG, "{r.p50_ms:,.1f} / {r.value:,.1f}")],
        ["lag: writes the other node never showed", *cells(LAG, "{r.errors:,}")],
        ["acknowledged creates lost, per run", *cells(LOST, "{r.value:,.0f} of {r.requests:,}")],
        [
            "catch-up, rows/s per run",
            *cells(CATCHUP, "{r.value:,.0f}", ("dtm",)),
            "no such operation",
        ],
    ]
    return md(["measure", "dtm", "original ⚠"], rows)


def refs_table(res: Results, plan: Plan) -> str:
    """Each pair: both rates, the per-round ratio, the CPU per request of the measured process."""
    header = ["measure", "dtm req/s (min–max)", "reference req/s (min–max)"]
    header += ["dtm ÷ reference, per round", "CPU µs per request: dtm / reference"]
    rows = []
    for ours, theirs, what in pairs(plan.conns):
        pair, (a, b) = res.paired(ours, theirs), (res.find(ours), res.find(theirs))
        ratio = f"**{times(res.ratio(ours, theirs) or 0)}**" if pair else "–"
        ratio += f" ({times(min(pair))}–{times(max(pair))})" if len(pair) > 1 else ""
        cpu = " / ".join(num(r.stat("cpu_sum") if r else None) for r in (a, b))
        rows.append([what, _figures(a)[0], _figures(b)[0], ratio, cpu])
    return md(header, rows)


def _keep_if_missed(text: str, missed: set[str]) -> str:
    def keep(m: re.Match[str]) -> str:
        return m.group(2) if missed & set(m.group(1).split()) else ""

    return re.sub(r"<!-- if missed ([\w\s-]+?) -->\n(.*?)<!-- end -->\n", keep, text, flags=re.S)


def _unprofiled(met: bool | None) -> str:
    return "the goal is met in this run: not profiled" if met else "not profiled in this run"


def render(res: Results, plan: Plan, charts: list[str]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    sizes = zip(("small", "mid", "big"), plan.list_sizes, strict=True)
    gl, cli = res.goals, (res.group("cli") or Group("cli")).rows
    values = {
        "generated": f"{MODE[res.mode]} (`{res.command}`) on {when} in {res.seconds:.0f} s",
        "machine": md(["", ""], [[k, v] for k, v in res.machine.items()]),
        "goals": md(
            ["goal", "measured", "verdict"], [[g.text, g.shown, VERDICT[g.met]] for g in gl]
        ),
        "paths": paths_table(res, plan),
        "rss": rss_line(res, plan),
        "memory": memory_table(res, plan),
        "replication": repl_table(res),
        "references": refs_table(res, plan),
        "cli": md(["measure", "median ms (min–max)"], [[r.name, _figures(r)[0]] for r in cli]),
        "charts": "\n\n".join(f"![{c}](img/{c})" for c in charts),
        "notes": "\n".join(f"- {n}" for g in res.groups for n in g.notes) or "- none",
        **{f"profile:{g.key}": g.profile or _unprofiled(g.met) for g in res.goals},
        **{k: f"{v:,}" if isinstance(v, int) else str(v) for k, v in asdict(plan).items()},
        **{f"list_{k}": f"{n:,}" for k, n in sizes},
    }
    text = _keep_if_missed(TEMPLATE.read_text(), {g.key for g in gl if g.met is False})
    return re.sub(r"\{\{([\w:-]+)\}\}", lambda m: values.get(m.group(1), m.group(0)), text)
