"""A listen address apart from the address the others dial, and `dtm health` as the probe."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.harness import LocalCluster, request, running, wait_until

from dtm.config import add_config_flag, parse_config
from dtm.errors import ErrSyntaxInvalidArgs

pytestmark = pytest.mark.timeout(120)


def _health(c: LocalCluster, component: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "dtm.run", "health", component, "--config", str(c.config_path)]
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=30)


def test_listen_is_the_bind_address_and_host_the_dialled_one() -> None:
    text = '[[node]]\nname = "store1"\nhost = "store1.internal"\nport = 7411\nlisten = "0.0.0.0"\n'
    cfg = parse_config(text)
    node = cfg.node[0]
    assert (node.bind_host, node.url) == ("0.0.0.0", "http://store1.internal:7411")
    assert cfg.balancer.bind_host == cfg.balancer.host == "127.0.0.1"


def test_an_unknown_listen_key_is_still_refused() -> None:
    with pytest.raises(ErrSyntaxInvalidArgs, match="listen_on"):
        parse_config('[[node]]\nname = "store1"\nport = 7411\nlisten_on = "0.0.0.0"\n')


def test_a_node_bound_to_the_wildcard_is_dialled_at_its_host(tmp_path: Path) -> None:
    """The balancer dials 127.0.0.3 (the node's `host`); the node binds 0.0.0.0 (`listen`), so
    the same node also answers the probe on 127.0.0.1, as a container's HEALTHCHECK asks."""
    with running(
        tmp_path,
        ("balancer", "handler"),
        node_hosts={"store1": "127.0.0.3"},
        node_options={"store1": {"listen": "0.0.0.0"}},
    ) as c:
        done = _health(c, "store1")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "store1 at 127.0.0.1:" in done.stdout and "healthy" in done.stdout
        # The balancer reaches it through the dialled address: writes land on both nodes.
        for i in range(6):
            r = request("PUT", f"{c.url('balancer')}/v1/kv/k{i}", {"value": i})
            assert r.status == 200, r

        def store1_wrote() -> bool:
            return int(request("GET", f"{c.url('store1')}/v1/status").json()["last_version"]) > 0

        wait_until(store1_wrote, 10, 0.05, "a write to reach store1 through 127.0.0.3")


def test_the_listen_flag_overrides_the_config(tmp_path: Path) -> None:
    c = LocalCluster(tmp_path)
    try:
        c.start_nodes()
        c.start("handler", "--listen", "0.0.0.0")
        done = _health(c, "handler", "--address", "127.0.0.1")
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        c.stop_all()


def test_health_exits_1_for_a_component_that_does_not_answer(tmp_path: Path) -> None:
    c = LocalCluster(tmp_path)
    done = _health(c, "store2", "--timeout", "0.5")
    assert done.returncode == 1
    assert "store2" in done.stdout and "unhealthy" in done.stdout
    unknown = _health(c, "store9")
    assert unknown.returncode == 2 and "no component 'store9'" in unknown.stderr


def test_health_speaks_tls_with_the_components_own_certificate(tmp_path: Path) -> None:
    with running(tmp_path, ("sync",), tls=True, client_certs=True) as c:
        for comp in ("store1", "sync"):
            done = _health(c, comp)
            assert done.returncode == 0, done.stdout + done.stderr


def test_config_defaults_from_the_environment_and_is_required_without_it() -> None:
    with_env = argparse.ArgumentParser()
    add_config_flag(with_env, {"DTM_CONFIG": "/etc/dtm/cluster.toml"})
    assert with_env.parse_args([]).config == "/etc/dtm/cluster.toml"
    assert with_env.parse_args(["--config", "x.toml"]).config == "x.toml"
    without = argparse.ArgumentParser()
    add_config_flag(without, {})
    with pytest.raises(SystemExit):
        without.parse_args([])


def test_health_takes_component_and_config_from_the_environment(tmp_path: Path) -> None:
    """An image's exec-form HEALTHCHECK is `dtm health` with no argument at all."""
    with running(tmp_path, ()) as c:
        env = {**os.environ, "DTM_CONFIG": str(c.config_path), "DTM_COMPONENT": "store1"}
        argv = [sys.executable, "-m", "dtm.run", "health"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "store1 at" in done.stdout
        env.pop("DTM_COMPONENT")
        bare = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
        assert bare.returncode == 2 and "DTM_COMPONENT" in bare.stderr
