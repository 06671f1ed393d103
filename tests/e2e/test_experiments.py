"""docs/experiments.md cannot rot: every line of its `sh` blocks runs, in order, against a real
cluster, in a project folder of its own whose Makefile and .venv are this checkout's.

A line must exit 0, or what its ``# exit N`` (``# exit 0|5``) comment says. Shell variables carry
from line to line (``id=$(todo add …)``). Between lines the test waits, with a deadline, for what
the page says happens next: after a lever, until every sync pair is reachable and caught up and
the balancer sees each node's fence; an `inspect` is retried until every node has the same write.
If this checkout's `todo` has no ``--node`` option yet, a stand-in sends that one command to the
named node's own endpoint.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from runcluster import RunCluster, run_cluster
from tests.harness import request, wait_until

__all__ = ["run_cluster"]

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "experiments.md"
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.M | re.S)
EXIT = re.compile(r"#\s*exit\s+([0-9|]+)")
SETTLES = re.compile(r"\b(make (up|start-|resume-)|cluster (wipe|skew|start))")

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc"),
]

NODE_STANDIN = r"""
import sys, urllib.parse
from tests.harness import register_cluster, request
from dtm.config import load_config
config, node, verb, ref, *rest = sys.argv[1:]
register_cluster(config)
url = load_config(config).node_named(node).url
page = request("GET", url + "/v1/kv?" + urllib.parse.urlencode({"limit": 10000})).json()
key = next(r["key"] for r in page["rows"] if r["key"].split(".")[-1].startswith(ref))
if verb == "delete":
    got = request("DELETE", url + "/v1/kv/" + key)
else:
    value = next(r["value"] for r in page["rows"] if r["key"] == key)
    got = request("PUT", url + "/v1/kv/" + key, {"value": {**value, "status": rest[0]}})
print(got.status, key)
sys.exit(0 if got.status == 200 else 1)
"""


def lines_of(page: str) -> list[str]:
    out = []
    for block in BLOCK.findall(page):
        for line in block.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                out.append(line)
    return out


def expected(line: str) -> set[int]:
    m = EXIT.search(line)
    return {int(x) for x in m.group(1).split("|")} if m else {0}


def project(c: RunCluster) -> Path:
    """A folder with `run/` (the test's cluster), and this checkout's Makefile and tools."""
    where = c.root
    for name in ("Makefile", "pyproject.toml"):
        (where / name).symlink_to(ROOT / name)
    venv = where / ".venv"
    (venv / "bin").mkdir(parents=True)
    real = Path(sys.executable).parent
    (venv / "pyvenv.cfg").symlink_to(real.parent / "pyvenv.cfg")
    for tool in ("dtm", "python"):
        (venv / "bin" / tool).symlink_to(real / tool if (real / tool).exists() else sys.executable)
    help_text = subprocess.run(
        [str(real / "todo"), "help"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    todo = venv / "bin" / "todo"
    if "--node" in help_text:
        todo.symlink_to(real / "todo")
    else:
        standin = where / "node_standin.py"
        standin.write_text(NODE_STANDIN)
        todo.write_text(
            "#!/bin/bash\n"
            'if [ "$1" = "--node" ]; then\n'
            f"  exec env PYTHONPATH={shlex.quote(str(ROOT))} {shlex.quote(sys.executable)} "
            f'{shlex.quote(str(standin))} {shlex.quote(str(c.run.config))} "${{@:2}}"\n'
            "fi\n"
            f'exec {shlex.quote(str(real / "todo"))} "$@"\n'
        )
        todo.chmod(0o755)
    # make's install step is done (this checkout's .venv): no reinstall from here
    (venv / ".installed").touch()
    later = time.time() + 1
    os.utime(venv / ".installed", (later, later))
    return where


def settle(c: RunCluster) -> None:
    """Every sync pair reachable and caught up; the balancer agrees with each node's fence."""

    def calm() -> bool:
        st = request("GET", c.url("sync") + "/v1/status", timeout=3).json()
        if not all(p["reachable"] and p["lag_versions"] == 0 for p in st["pairs"]):
            return False
        fenced = {n: c.node_status(n)["fenced"] for n in ("store1", "store2")}
        bal = request("GET", c.url("balancer") + "/v1/status", timeout=3).json()
        return all(u["fenced"] == fenced[u["name"]] and u["healthy"] for u in bal["nodes"])

    wait_until(calm, timeout=60, interval=0.2, what="the cluster to settle after a lever")


def run_line(where: Path, env: dict[str, str], state: Path, line: str) -> Any:
    script = f"source {shlex.quote(str(state))}\n{line}\nrc=$?\ndeclare -p id id2 2>/dev/null >{shlex.quote(str(state))}\nexit $rc\n"  # noqa: E501
    if "--watch" in line:
        script = f"source {shlex.quote(str(state))}\ntimeout -s INT --preserve-status 3 {line}\n"
    return subprocess.run(
        ["bash", "-c", script], cwd=where, env=env, capture_output=True, text=True, timeout=180
    )


def test_every_command_of_the_experiments_page(run_cluster: RunCluster) -> None:
    c = run_cluster
    c.write_config(view=True)
    lines = lines_of(PAGE.read_text(encoding="utf-8"))
    assert len(lines) >= 20 and lines[0] == "make up"
    where = project(c)
    state = where / "vars.sh"
    state.write_text("")
    env = c.env()
    env["TODO_URL"] = c.url("handler")
    env.pop("TODO_TOKEN", None)
    env.pop("DTM_SYNC_URL", None)
    for i, line in enumerate(lines):
        want = expected(line)
        last: list[subprocess.CompletedProcess[str]] = []

        def as_written(line: str = line, want: Any = want, last: Any = last) -> bool:
            res = last[0]
            agreed = "cluster inspect" not in line or "every node has the same write" in res.stdout
            return res.returncode in want and agreed

        def ran(line: str = line, last: Any = last) -> bool:
            last[:] = [run_line(where, env, state, line)]
            # an inspect is asked again until every node has the write; any other line runs once
            return as_written() or "cluster inspect" not in line

        with contextlib.suppress(AssertionError):  # the assertion below says what was seen
            wait_until(ran, 30, 0.5, f"line {i + 1}: {line}")
        res = last[0]
        done = as_written()
        assert done, f"line {i + 1}: {line}\nexit {res.returncode}\n{res.stdout}{res.stderr}"
        assert "Traceback" not in res.stderr, res.stderr
        if i == 0:
            from tests.harness import register_cluster

            register_cluster(c.run.config)
        if SETTLES.search(line):
            settle(c)
        if "todo cluster conflicts" in line:  # what the page says you will see
            assert "the change made on store1 was lost" in res.stdout, res.stdout
