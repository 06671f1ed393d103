"""Group 4: the `todo` CLI as a process: `todo list` with its tasks and `todo add`, next to
`python -c pass` (the floor any Python CLI pays).

Rule: wall time of a whole process, by hyperfine (no shell, warm-up runs first) when it is
there, else by timing subprocesses the same way; each invocation is one run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.suite import env
from bench.suite.model import Group, Results, Row, Run
from bench.suite.plan import Plan
from bench.suite.profile import profile_command
from bench.suite.servers import Servers, fill

PYTHON = "CLI: python -c pass"


def list_row(n: int) -> str:
    return f"CLI: todo list ({n:,} tasks)"


ADD = "CLI: todo add"


def _todo() -> str:
    found = Path(sys.executable).parent / "todo"
    return str(found) if found.exists() else shutil.which("todo") or "todo"


def _times_hyperfine(
    cmds: list[list[str]], runs: int, envv: dict[str, str], out: Path
) -> list[list[float]]:
    argv = ["hyperfine", "-N", "--warmup", "2", "--runs", str(runs), "--export-json", str(out)]
    argv += [" ".join(c) for c in cmds]
    subprocess.run(argv, env=envv, capture_output=True, timeout=600, check=True)
    data = json.loads(out.read_text())
    return [[t * 1000 for t in r["times"]] for r in data["results"]]


def _times_subprocess(cmds: list[list[str]], runs: int, envv: dict[str, str]) -> list[list[float]]:
    out: list[list[float]] = [[] for _ in cmds]
    for _ in range(2):
        for c in cmds:
            subprocess.run(c, env=envv, capture_output=True, check=False)
    for _ in range(runs):
        for i, c in enumerate(cmds):
            t0 = time.perf_counter()
            subprocess.run(c, env=envv, capture_output=True, check=False)
            out[i].append((time.perf_counter() - t0) * 1000)
    return out


def run(plan: Plan, res: Results, workdir: Path) -> None:
    tool = "hyperfine -N --warmup 2" if env.ensure_apt("hyperfine", "hyperfine") else None
    g = Group(
        "cli",
        "4. CLI: `todo` as a process",
        method=(
            f"One `dtm node`, `dtm balancer`, `dtm handler`; {plan.cli_tasks:,} tasks. Wall time "
            f"of whole processes by {tool or 'timed subprocess runs (hyperfine not there)'}, "
            f"{plan.cli_runs} runs each: `python -c pass`, `todo list`, `todo add bench task`, "
            f"with TODO_URL set to the handler. Nothing pinned."
        ),
    )
    res.groups.append(g)
    servers = Servers(workdir)
    try:
        c = servers.cluster("g4", nodes=1)
        c.start_nodes()
        c.start("balancer")
        c.start("handler")
        fill(c.url("store1"), 0, plan.cli_tasks)
        home = workdir / "g4" / "home"
        home.mkdir(parents=True, exist_ok=True)
        envv = dict(
            os.environ,
            TODO_URL=c.url("handler"),
            TODO_TOKEN=c.user_token,
            XDG_CONFIG_HOME=str(home / "config"),
            XDG_STATE_HOME=str(home / "state"),
            HOME=str(home),
        )
        todo = _todo()
        cmds = [[sys.executable, "-c", "pass"], [todo, "list"], [todo, "add", "bench", "task"]]
        check = subprocess.run(cmds[1], env=envv, capture_output=True, text=True, check=False)
        shown = check.stdout.count("\n")
        if check.returncode != 0:
            raise RuntimeError(f"todo list failed ({check.returncode}): {check.stderr[-500:]}")
        g.notes.append(f"`todo list` printed {shown:,} lines.")
        if tool:
            times = _times_hyperfine(cmds, plan.cli_runs, envv, workdir / "hyperfine.json")
        else:
            times = _times_subprocess(cmds, plan.cli_runs, envv)
        names = [PYTHON, list_row(plan.cli_tasks), ADD]
        for name, ts in zip(names, times, strict=True):
            refs_ = [] if name == PYTHON else [PYTHON]
            g.add(Row(name, "ms", [Run(t) for t in ts], refs=refs_))
        lst = g.row(list_row(plan.cli_tasks))
        if plan.profile and lst is not None and (lst.median or 0) >= 100:
            res.profiles["todo list"] = profile_command(cmds[1], envv, workdir / "spy-cli.txt")
    finally:
        servers.stop_all()
        shutil.rmtree(workdir / "g4", ignore_errors=True)
