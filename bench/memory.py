"""The handler's memory by list size: one whole list streamed through dtm's handler at each size,
with the page cache as deployed and with none.

Rule: a fresh stack per size and setting, both nodes holding the same tasks and the sync quiet;
one `GET /v1/tasks` without a limit (the whole list, streamed) read to its end and checked to
carry every task; the handler's resident set from /proc before it and its peak after.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bench import machine
from bench.model import Group, Plan, Results, Row, Run
from bench.systems import Dtm, harness


def row_name(tasks: int, kept: bool) -> str:
    cache = "the page cache as deployed" if kept else "no page kept"
    return f"dtm: handler, a whole list of {tasks:,} tasks, {cache}"


def _current_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def run(plan: Plan, res: Results, workdir: Path) -> None:
    g = Group("memory")
    res.groups.append(g)
    for kept in (True, False):
        for tasks in plan.memory_sizes:
            row = g.add(Row(row_name(tasks, kept), "MiB"))
            folder = workdir / f"memory-{tasks}-{int(kept)}"
            stack = Dtm(folder, pages="watched" if kept else "none")
            try:
                stack.start(tasks)
                pid, t = stack.pids()["handler"], stack.target("list")
                before = _current_mib(pid)
                body = harness.request(t.method, t.base + t.path, None, t.headers, 600).body
                carried = stack.listed(body)
                peak = machine.peak_rss_mib(pid)
                rss = {"before": before, "peak": peak}
                row.runs.append(Run(peak - before, requests=len(body), rss_mib=rss))
                if carried != tasks:
                    row.note = f"the answer carried {carried:,} of {tasks:,} tasks"
                print(f"    {row.name:<72} {before:.0f} -> peak {peak:.0f} MiB", flush=True)
            finally:
                stack.stop()
                shutil.rmtree(folder, ignore_errors=True)
