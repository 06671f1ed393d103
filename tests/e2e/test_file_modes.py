"""Private files: data folders 0700; databases (and -wal/-shm), the sync cursor file, logs, the
secret and the cluster config 0600, for a test cluster and for `dtm cluster up`."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.harness import LocalCluster, free_port, register_cluster, request, wait_until

from dtm.cluster.commands import _with_secret_file
from dtm.config import parse_config


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_a_node_and_the_sync_keep_their_files_private(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=2)
    data = c.root / "data"
    data.mkdir(mode=0o755)  # a data folder an older version left open
    os.chmod(data, 0o755)
    c.start_nodes()
    c.start("sync")
    assert request("PUT", c.url("store1") + "/v1/kv/k", {"value": 1}).status == 200
    state = data / "sync.state.json"
    wait_until(state.exists, what="the sync to save its cursors")
    assert mode(data) == 0o700
    files = [p for p in data.iterdir() if p.is_file()]
    assert {p.name for p in files} >= {"store1.db", "store1.db-wal", "sync.state.json"}
    for p in files:
        assert mode(p) == 0o600, (p, oct(mode(p)))


def test_an_existing_database_is_made_private_on_start(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=1)
    c.start_nodes()
    assert request("PUT", c.url("store1") + "/v1/kv/k", {"value": 1}).status == 200
    c.procs["store1"].stop()
    for p in c.db_path("store1").parent.glob("store1.db*"):
        os.chmod(p, 0o644)
    os.chmod(c.db_path("store1").parent, 0o755)
    c.start("store1")
    assert mode(c.db_path("store1").parent) == 0o700
    for p in c.db_path("store1").parent.glob("store1.db*"):
        assert mode(p) == 0o600, p


def test_a_config_without_a_secret_gets_one() -> None:
    text = '[cluster]\ndata_dir = "data"\n\n[[node]]\nname = "store1"\nport = 7411\n'
    assert parse_config(_with_secret_file(text)).cluster.secret_file == "secret"
    bare = '[[node]]\nname = "store1"\nport = 7411\n'
    assert parse_config(_with_secret_file(bare)).cluster.secret_file == "secret"


def test_cluster_up_makes_a_secret_and_private_files() -> None:
    root = Path(tempfile.mkdtemp(prefix="dtmf-", dir="/tmp"))
    run = root / "run"
    run.mkdir()
    os.chmod(run, 0o755)
    port = free_port()
    config = run / "cluster.toml"  # written by hand, without a secret_file
    config.write_text(f'[cluster]\ndata_dir = "data"\n\n[[node]]\nname = "store1"\nport = {port}\n')
    env = {k: v for k, v in os.environ.items() if k not in ("DTM_DIE_WITH_PARENT",)}
    env.pop("DTM_CLUSTER_SECRET", None)

    def dtm(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "dtm.run", "cluster", *args, "--dir", str(run)]
        return subprocess.run(argv, capture_output=True, text=True, timeout=90, env=env)

    try:
        up = dtm("up", "--components", "store1")
        assert up.returncode == 0, up.stdout + up.stderr
        assert (
            'added secret_file = "secret"' in up.stdout and "made a new cluster secret" in up.stdout
        )
        register_cluster(config)
        assert request("GET", f"http://127.0.0.1:{port}/v1/status").status == 200
        assert request("GET", f"http://127.0.0.1:{port}/v1/status", auth=False).status == 401
        for d in (run, run / "data", run / "logs"):
            assert mode(d) == 0o700, d
        for f in (run / "secret", config, *(run / "data").iterdir(), *(run / "logs").iterdir()):
            if f.is_file():
                assert mode(f) == 0o600, (f, oct(mode(f)))
        assert (run / "logs" / "store1.log").exists()
    finally:
        dtm("down")
        shutil.rmtree(root, ignore_errors=True)
