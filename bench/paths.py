"""The user's path of both systems, side by side: create and list at 1 and 32 clients and list
at three sizes, with the server CPU per request of every process.

Rule: every stage of every round starts both systems fresh (the original's create slows as its
store grows), rounds interleave the systems (which goes first alternates), and a stage whose
list does not carry all its tasks says so.
"""

from __future__ import annotations

import contextlib
import http.client
import shutil
from dataclasses import dataclass
from pathlib import Path

from bench import load, profile
from bench.load import Target
from bench.model import Group, Plan, Results, Row
from bench.systems import Dtm, Original, Pages, harness


@dataclass(frozen=True)
class Stage:
    op: str
    tasks: int
    conns: int
    goal: str = ""  # the goal this stage is held against
    stretch: int = 1  # runs this many times longer (a slow list still completes some requests)
    pages: Pages = "watched"  # what dtm's handler does with the node pages it kept

    @property
    def key(self) -> str:
        return f"{self.op}{self.tasks if self.op == 'list' else ''}-{self.conns}{_KEYS[self.pages]}"

    @property
    def title(self) -> str:
        what = "create" if self.op == "create" else f"list of {self.tasks:,} tasks"
        return f"{what}, {self.conns} client{'s' * (self.conns > 1)}{_TITLES[self.pages]}"


_KEYS: dict[Pages, str] = {"watched": "", "asked": "-asked", "none": "-cold"}
_TITLES: dict[Pages, str] = {
    "watched": "",
    "asked": ", each list asking a node",
    "none": ", no page kept",
}


def stages(plan: Plan) -> list[Stage]:
    small, mid, big = plan.list_sizes
    return [
        Stage("create", 0, 1, "create1"),
        Stage("create", 0, plan.conns, "create32"),
        Stage("list", small, 1),
        Stage("list", small, plan.conns, "list-small"),
        Stage("list", small, plan.conns, pages="asked"),
        Stage("list", mid, plan.conns, "list-mid"),
        Stage("list", mid, plan.conns, pages="none"),
        Stage("list", big, plan.conns, "list-big", 3),
    ]


def row_name(system: str, st: Stage) -> str:
    return f"{system}: {st.title}"


def _listed_once(t: Target, tries: int) -> bytes:
    """One list's body, to check it carries every task. The original's answer is asked for up to
    ``tries`` times: its balancer now and then breaks off a chunked answer (an IncompleteRead),
    a fault of the reference, not of the stage; dtm's is asked once."""
    for _ in range(tries - 1):
        with contextlib.suppress(http.client.HTTPException):
            return harness.request(t.method, t.base + t.path, t.body, t.headers).body
    return harness.request(t.method, t.base + t.path, t.body, t.headers).body


def _one(system: type[Dtm | Original], st: Stage, plan: Plan, row: Row, workdir: Path) -> None:
    folder = workdir / f"{system.name}-{st.key}"
    stack = Dtm(folder, pages=st.pages) if system is Dtm else system(folder)
    try:
        stack.start(st.tasks)
        t = stack.target(st.op)
        if st.op == "list":
            body = _listed_once(t, tries=1 if system is Dtm else 3)
            if stack.listed(body) != st.tasks:
                row.note = f"the answer carried {stack.listed(body):,} of {st.tasks:,} tasks"
        row.runs.append(
            r := load.run(t, plan.seconds * st.stretch, st.conns, workdir, stack.pids())
        )
        cpu = " + ".join(f"{n} {v:.0f}" for n, v in r.cpu_us.items())
        print(f"    {row.name:<44} {r.value:>8,.0f}/s, {r.errors} errors; CPU µs/req: {cpu}")
    finally:
        stack.stop()
        shutil.rmtree(folder, ignore_errors=True)


def run(plan: Plan, res: Results, workdir: Path, original_missing: str | None) -> None:
    g = Group("paths")
    res.groups.append(g)
    systems: list[type[Dtm | Original]] = [Dtm] if original_missing else [Dtm, Original]
    rows = {
        (s.name, st): Row(row_name(s.name, st), "req/s")
        for st in stages(plan)
        for s in (Dtm, Original)
    }
    g.rows += rows.values()
    for st in stages(plan):
        rows[("original", st)].not_measured = original_missing or ""
    for i in range(plan.runs):
        print(f"  round {i + 1}/{plan.runs}", flush=True)
        for st in stages(plan):
            for system in systems[:: 1 - 2 * (i % 2)]:
                _one(system, st, plan, rows[(system.name, st)], workdir)


def profile_missed(plan: Plan, res: Results, workdir: Path, missed: list[str]) -> None:
    """py-spy on dtm's two busiest processes during one more run of each missed stage."""
    for st in stages(plan):
        if st.goal not in missed:
            continue
        row = res.find(row_name("dtm", st))
        assert row is not None
        busiest = sorted(row.by_process(), key=lambda n: -row.by_process()[n])[:2]
        stack = Dtm(workdir / f"spy-{st.key}")
        try:
            stack.start(st.tasks)
            pids = stack.pids()
            spies = {
                n: profile.Recorder(pids[n], plan.seconds, workdir / f"spy-{n}") for n in busiest
            }
            load.run(stack.target(st.op), plan.seconds + 1, st.conns, workdir, {})
            res.profiles[st.goal] = "; ".join(f"**{n}**: {s.finish()}" for n, s in spies.items())
        finally:
            stack.stop()
