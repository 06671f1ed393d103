"""A local cluster under supervisord in a short temporary run directory, for lever and view tests.

`RunCluster` writes cluster.toml with free loopback ports first (so `dtm cluster up` never touches
the default ports) and runs `dtm cluster ...` as a real process; the `run_cluster` fixture runs
`down` and then kills whatever this run directory still has alive, even when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.harness import free_port, processes_naming, register_cluster, request, wait_until

from dtm.cluster.layout import RunDir
from dtm.cluster.supervisor_client import Supervisor
from dtm.config import load_config


class RunCluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.run = RunDir.at(root / "run")
        self.run.root.mkdir(parents=True)
        self.sup = Supervisor(self.run, sys.executable)

    def write_config(self, nodes: int = 2, view: bool = False, sync_extra: str = "") -> None:
        lines = ["[cluster]", 'data_dir = "data"', 'log_dir = "logs"', 'secret_file = "secret"']
        for i in range(1, nodes + 1):
            lines += ["", "[[node]]", f'name = "store{i}"', 'host = "127.0.0.1"']
            lines += [f"port = {free_port()}"]
        for section in ("balancer", "handler", "sync", *(["view"] if view else [])):
            lines += ["", f"[{section}]", 'host = "127.0.0.1"', f"port = {free_port()}"]
            if section == "sync" and sync_extra:
                lines.append(sync_extra)
        self.run.config.write_text("\n".join(lines) + "\n")

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "DTM_DIE_WITH_PARENT"}
        env.update(HOME=str(self.root), XDG_CONFIG_HOME=str(self.root / "xdg"))
        env.update(XDG_STATE_HOME=str(self.root / "state"))
        return env

    def dtm(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "dtm.run", "cluster", *args, "--dir", str(self.run.root)]
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=self.env(), check=False
        )

    def ok(self, *args: str) -> str:
        res = self.dtm(*args)
        assert res.returncode == 0, (
            f"dtm cluster {args} -> {res.returncode}\n{res.stdout}{res.stderr}"
        )
        return res.stdout

    def up(self, *args: str) -> str:
        out = self.ok("up", *args)
        register_cluster(self.run.config)
        return out

    @property
    def cfg(self) -> Any:
        return load_config(self.run.config)

    def url(self, name: str) -> str:
        return dict((n, s.url) for n, s in self.cfg.components)[name]

    def state(self, name: str) -> str:
        return {p.name: p.statename for p in self.sup.processes()}[name]

    def pid(self, name: str) -> int:
        return {p.name: p.pid for p in self.sup.processes()}[name]

    def node_status(self, name: str) -> dict[str, Any]:
        got = request("GET", self.url(name) + "/v1/status", timeout=5)
        assert got.status == 200, got
        data: dict[str, Any] = got.json()
        return data

    def row(self, node: str, key: str) -> dict[str, Any] | None:
        got = request("GET", self.url(node) + "/v1/kv/" + key, timeout=5)
        return got.json() if got.status == 200 else None

    def wait_row(self, node: str, key: str, what: str) -> dict[str, Any]:
        return wait_until(lambda: self.row(node, key), timeout=30, what=what)

    def leftovers(self) -> list[int]:
        """Live processes whose command line names this run directory."""
        return processes_naming(self.run.root)

    def close(self) -> None:
        for pid in self.leftovers():  # a paused component would hold `down` for 10 s
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        try:
            self.dtm("down", timeout=60)
        finally:
            for pid in self.leftovers():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def run_cluster() -> Iterator[RunCluster]:
    c = RunCluster(Path(tempfile.mkdtemp(prefix="dtmv-", dir="/tmp")))
    try:
        yield c
    finally:
        c.close()
