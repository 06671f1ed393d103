"""`dtm cluster` end to end: real supervisord, real components, real HTTP, ephemeral ports.

Each test gets a short run directory in /tmp (a unix socket path must stay short) whose
cluster.toml is written first with free loopback ports, so `up` never touches the default ports.
The fixture always runs `down` and then kills whatever this run directory still has alive.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.harness import free_port, processes_naming, register_cluster, request, wait_until

from dtm.cluster.layout import RunDir
from dtm.cluster.supervisor_client import Supervisor
from dtm.config import load_config

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/cmdline").exists(), reason="needs Linux /proc to find leftover processes"
)


class Cluster:
    """A run directory and the `dtm cluster` commands run against it."""

    def __init__(self, root: Path) -> None:
        self.run = RunDir.at(root / "run")
        self.run.root.mkdir(parents=True)
        self.sup = Supervisor(self.run, sys.executable)

    def write_config(self, nodes: int = 2) -> None:
        lines = ["[cluster]", 'data_dir = "data"', 'log_dir = "logs"', ""]
        for i in range(1, nodes + 1):
            lines += ["[[node]]", f'name = "store{i}"', 'host = "127.0.0.1"']
            lines += [f"port = {free_port()}", ""]
        for section in ("balancer", "handler", "sync"):
            lines += [f"[{section}]", 'host = "127.0.0.1"', f"port = {free_port()}", ""]
        self.run.config.write_text("\n".join(lines))

    def dtm(self, *args: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "dtm.run", "cluster", *args, "--dir", str(self.run.root)]
        env = {k: v for k, v in os.environ.items() if k != "DTM_DIE_WITH_PARENT"}
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )

    def ok(self, *args: str) -> str:
        res = self.dtm(*args)
        assert res.returncode == 0, (
            f"dtm cluster {args} -> {res.returncode}\n{res.stdout}{res.stderr}"
        )
        return res.stdout

    def urls(self) -> dict[str, str]:
        register_cluster(self.run.config)
        cfg = load_config(self.run.config)
        return {n.name: n.url for n in cfg.node}

    def pids(self) -> dict[str, int]:
        return {p.name: p.pid for p in self.sup.processes() if p.statename == "RUNNING"}

    def leftovers(self) -> list[int]:
        """Live processes whose command line names this run directory."""
        return processes_naming(self.run.root)

    def kill_leftovers(self) -> None:
        for pid in self.leftovers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def cluster_dir() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="dtmc-", dir="/tmp"))
    c = Cluster(root)
    c.write_config()
    try:
        yield c
    finally:
        try:
            c.dtm("down", timeout=60)
        finally:
            c.kill_leftovers()
            shutil.rmtree(root, ignore_errors=True)


def healthy(url: str) -> bool:
    try:
        return request("GET", url + "/healthz", timeout=1.0).status == 200
    except OSError:
        return False


def port_free(url: str) -> bool:
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_up_is_idempotent_and_a_killed_node_comes_back(cluster_dir: Cluster) -> None:
    c = cluster_dir
    out = c.ok("up", "--components", "nodes")
    assert "started supervisord" in out
    urls = c.urls()
    assert all(healthy(u) for u in urls.values())
    first = c.pids()
    assert set(first) == {"store1", "store2"}

    again = c.ok("up", "--components", "nodes")
    assert "started" not in again and "starting" not in again
    assert c.pids() == first

    status = c.ok("status")
    for name, url in urls.items():
        assert name in status and url in status

    os.kill(first["store1"], signal.SIGKILL)
    wait_until(
        lambda: (
            c.pids().get("store1", first["store1"]) != first["store1"] and healthy(urls["store1"])
        ),
        timeout=30,
        what="supervisord to restart the killed store1",
    )
    assert c.pids()["store2"] == first["store2"]
    c.ok("up", "--components", "nodes")

    refused = c.dtm("up", "--nodes", "3")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "stop it first" in refused.stderr
    assert len(load_config(c.run.config).node) == 2

    logs = c.ok("logs", "store1", "-n", "5")
    assert 0 < len(logs.splitlines()) <= 5
    missing = c.dtm("logs", "no-such-thing")
    assert missing.returncode == 3 and "ErrNoDataFound" in missing.stderr


def test_killed_supervisord_leaves_no_orphans_and_up_restores_data(cluster_dir: Cluster) -> None:
    c = cluster_dir
    c.ok("up", "--components", "nodes")
    urls = c.urls()
    put = request("PUT", urls["store1"] + "/v1/kv/kept", {"value": "before the crash"})
    assert put.status == 200, put
    sup_pid = c.sup.pid()
    assert sup_pid is not None

    os.kill(sup_pid, signal.SIGKILL)
    wait_until(
        lambda: not c.leftovers(), timeout=30, what="every component to die with supervisord"
    )
    assert all(port_free(u) for u in urls.values())

    out = c.ok("up", "--components", "nodes")
    assert "started supervisord" in out
    assert all(healthy(u) for u in urls.values())
    got = request("GET", urls["store1"] + "/v1/kv/kept")
    assert got.status == 200 and got.json()["value"] == "before the crash"


def test_down_keeps_data_and_rm_deletes_it(cluster_dir: Cluster) -> None:
    c = cluster_dir
    c.ok("up", "--components", "nodes")
    urls = c.urls()
    assert request("PUT", urls["store2"] + "/v1/kv/k1", {"value": [1, 2]}).status == 200

    assert "stopped" in c.ok("down")
    assert not c.leftovers()
    assert all(port_free(u) for u in urls.values())
    assert "not running" in c.ok("down")
    assert c.dtm("status").returncode == 1

    c.ok("up", "--components", "nodes")
    got = request("GET", urls["store2"] + "/v1/kv/k1")
    assert got.status == 200 and got.json()["value"] == [1, 2]

    c.ok("rm")
    assert not c.leftovers()
    assert not c.run.data.exists() and not c.run.config.exists()


def test_up_starts_every_available_component(cluster_dir: Cluster) -> None:
    c = cluster_dir
    out = c.ok("up", "--timeout", "30")
    status = c.ok("status")
    cfg = load_config(c.run.config)
    for comp in [n.name for n in cfg.node]:
        assert comp in out and comp in status
    lines = [ln for ln in status.splitlines()[2:] if ln.strip()]
    assert lines and all(ln.rstrip().endswith("ok") for ln in lines), status


def test_up_names_the_port_that_is_taken_at_once(cluster_dir: Cluster) -> None:
    c = cluster_dir
    port = int(c.urls()["store2"].rsplit(":", 1)[1])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        res = c.dtm("up", "--components", "nodes", "--timeout", "60")
    assert res.returncode == 6, res.stdout + res.stderr
    assert f"port {port} is in use: store2" in res.stderr
    assert "not healthy" not in res.stderr  # no wait for health: nothing was started
    c.ok("up", "--components", "nodes")
