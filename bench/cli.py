"""The `todo` CLI as a process, next to `python -c pass` (the floor any Python CLI pays).

Rule: wall time of whole processes against a deployed cluster, two warm-up runs first, the
commands interleaved run by run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench import profile
from bench.model import Group, Plan, Results, Row, Run
from bench.systems import Dtm


def _times(cmds: list[list[str]], runs: int, env: dict[str, str]) -> list[list[float]]:
    """Wall ms of each command, two warm-up runs first, the commands interleaved."""
    out: list[list[float]] = [[] for _ in cmds]
    for i in range(runs + 2):
        for c, ts in zip(cmds, out, strict=True):
            t0 = time.perf_counter()
            subprocess.run(c, env=env, capture_output=True, check=True)
            ts.extend([(time.perf_counter() - t0) * 1000] if i >= 2 else [])
    return out


def run(plan: Plan, res: Results, workdir: Path) -> None:
    g = Group("cli")
    res.groups.append(g)
    stack = Dtm(workdir / "cli")
    try:
        stack.start(plan.cli_tasks)
        home = workdir / "cli" / "home"
        env = dict(os.environ, TODO_URL=stack.c.url("handler"), TODO_TOKEN=stack.c.user_token)
        env.update(HOME=str(home), XDG_CONFIG_HOME=f"{home}/config", XDG_STATE_HOME=f"{home}/state")
        # As installed: bytecode is cached (pip compiles it), so the warm-up runs may write it
        # here too; with PYTHONDONTWRITEBYTECODE every run would recompile the project's modules.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        todo = str(Path(sys.executable).parent / "todo")
        cmds = [[sys.executable, "-c", "pass"], [todo, "list"], [todo, "add", "bench", "task"]]
        names = ["python -c pass", f"todo list ({plan.cli_tasks:,} tasks)", "todo add"]
        for name, ts in zip(names, _times(cmds, plan.cli_runs, env), strict=True):
            g.add(Row(f"CLI: {name}", "ms", [Run(t) for t in ts]))
        if plan.profile and (g.rows[1].stat() or 0) >= 100:
            res.profiles["cli"] = profile.Recorder(0, 0, workdir / "spy", *cmds[1], **env).finish()
    finally:
        stack.stop()
        shutil.rmtree(workdir / "cli", ignore_errors=True)
