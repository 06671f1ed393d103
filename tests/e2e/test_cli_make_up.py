"""`make up` keeps its promises: NODES is remembered by the cluster file, an edited cluster file
is never rewritten, a port held by another program fails at once naming it, and `make exec`
dials the handler the cluster file names. Real `dtm cluster` and `make` processes; no cluster
is started (every case fails or answers before supervisord would run)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.harness import free_port

from dtm.cluster.commands import WRITTEN, _ensure_config
from dtm.cluster.layout import RunDir
from dtm.config import default_config_text
from dtm.errors import ErrSyntaxInvalidArgs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run() -> Iterator[RunDir]:
    with tempfile.TemporaryDirectory(prefix="dtm-up-", dir="/tmp") as d:
        r = RunDir.at(Path(d) / "run")
        r.root.mkdir()
        yield r


def dtm_cluster(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DTM_DIE_WITH_PARENT"}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"))
    return subprocess.run(
        [sys.executable, "-m", "dtm.run", "cluster", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def make_n(*args: str) -> str:
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make")
    proc = subprocess.run(
        [make, "-n", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc
    return proc.stdout


def test_a_plain_make_up_keeps_the_number_of_nodes() -> None:
    up = make_n("up", "RUN_DIR=/tmp/x")
    assert "cluster up" in up and "--nodes" not in up  # the cluster file's count stays
    assert "--nodes 3" in make_n("up", "NODES=3", "RUN_DIR=/tmp/x")


def test_the_cluster_file_remembers_nodes(run: RunDir) -> None:
    _ensure_config(run, 3, running=False)
    assert len(_ensure_config(run, None, running=False).node) == 3


def test_an_edited_cluster_file_is_never_rewritten(run: RunDir) -> None:
    _ensure_config(run, 2, running=False, base=7600)
    edited = run.config.read_text() + "# my own note\n"
    run.config.write_text(edited)
    with pytest.raises(ErrSyntaxInvalidArgs, match=r"was edited.*mv .*cluster\.toml\.bak"):
        _ensure_config(run, 3, running=False)
    assert run.config.read_text() == edited


def test_an_unedited_cluster_file_follows_nodes_and_keeps_its_ports(run: RunDir) -> None:
    _ensure_config(run, 2, running=False, base=7600)
    cfg = _ensure_config(run, 3, running=False)
    assert [n.port for n in cfg.node] == [7611, 7612, 7613] and cfg.handler.port == 7600
    assert run.config.read_text() == default_config_text(3, base=7600)
    assert (run.root / WRITTEN).exists()


def test_a_taken_port_fails_at_once_naming_it(run: RunDir, tmp_path: Path) -> None:
    base = free_port()
    run.config.write_text(
        "\n".join(
            [
                "[cluster]",
                'data_dir = "data"',
                'log_dir = "logs"',
                "[[node]]",
                'name = "store1"',
                f"port = {free_port()}",
                "[balancer]",
                f"port = {base}",
                "[handler]",
                f"port = {free_port()}",
                "[sync]",
                f"port = {free_port()}",
                "",
            ]
        )
    )
    with socket.create_server(("127.0.0.1", base)):
        res = dtm_cluster("up", "--dir", str(run.root), "--timeout", "60", home=tmp_path)
    assert res.returncode == 6, res
    assert f"port {base} is in use" in res.stderr and "balancer" in res.stderr
    assert not run.socket.exists()  # nothing was started


def test_make_exec_dials_the_handler_of_the_cluster_file(run: RunDir, tmp_path: Path) -> None:
    run.config.write_text(default_config_text(1, base=7700))
    res = dtm_cluster("url", "--dir", str(run.root), home=tmp_path)
    assert res.returncode == 0 and res.stdout.strip() == "http://127.0.0.1:7700", res
    res = dtm_cluster("url", "store1", "--dir", str(run.root), home=tmp_path)
    assert res.stdout.strip() == "http://127.0.0.1:7711"
    exec_ = make_n("exec", f"RUN_DIR={run.root}")
    assert "cluster url handler" in exec_ and 'todo --url "$url" shell' in exec_
