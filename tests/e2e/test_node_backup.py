"""`dtm node backup|restore`: a restored node gets a new epoch, so the sync resyncs it in full."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from syncutil import caught_up, converged, node_status, put
from tests.harness import LocalCluster, running

pytestmark = pytest.mark.timeout(120)
FAST = {"wait_ms": 300, "anti_entropy_interval_ms": 600000}


def _node(c: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "dtm.run", "node", *args, "--config", str(c.config_path)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_a_restored_node_gets_a_new_epoch_and_gets_back_what_its_copy_lacks(
    tmp_path: Path,
) -> None:
    """Restored with its old epoch, the node's cursors would skip what came after the backup:
    the rows it had written itself and those the sync had already copied into it."""
    with running(tmp_path / "c", ("sync",), sections={"sync": FAST}) as c:
        s1, s2 = c.node_urls
        for i in range(5):
            put(s1, f"early{i}", i)
        converged(c)
        copy = tmp_path / "store1.bak"
        done = _node(c, "backup", "--name", "store1", str(copy))
        assert done.returncode == 0, done.stderr
        old_epoch = node_status(s1)["epoch"]
        for i in range(5):
            put(s1, f"late1-{i}", i)  # on store1 after the backup: only store2 keeps them
            put(s2, f"late2-{i}", i)  # copied into store1 by the sync after the backup
        caught_up(c)
        before = converged(c)
        assert len(before) == 15
        c.procs["store1"].stop()
        done = _node(c, "restore", "--name", "store1", str(copy))
        assert done.returncode == 0, done.stderr
        c.start("store1")
        assert converged(c) == before
        assert node_status(s1)["epoch"] != old_epoch


def test_restore_is_refused_while_the_node_runs_and_for_another_nodes_copy(
    tmp_path: Path,
) -> None:
    with running(tmp_path / "c", ()) as c:
        put(c.node_urls[0], "k", 1)
        copy = tmp_path / "store1.bak"
        assert _node(c, "backup", "--name", "store1", str(copy)).returncode == 0
        assert copy.stat().st_mode & 0o077 == 0
        busy = _node(c, "restore", "--name", "store1", str(copy))
        assert busy.returncode != 0 and "ErrUnavailable" in busy.stderr, busy.stderr
        assert "is running" in busy.stderr
        c.procs["store2"].stop()
        other = _node(c, "restore", "--name", "store2", str(copy))
        assert other.returncode != 0 and "not store2's" in other.stderr, other.stderr
