"""The deployment files agree with the code: every cluster TOML they carry parses, names the
components the files run, and every container probes itself with `dtm health`.

`make deploy-test` also runs the engines; these checks are cheap and run with `make test`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dtm.config import ClusterConfig, parse_config

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _k8s() -> list[dict[str, Any]]:
    return [d for f in sorted(K8S.glob("*.yaml")) for d in _docs(f)]


def _kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _k8s() if d["kind"] == kind}


def _k8s_config() -> ClusterConfig:
    return parse_config(_kind("ConfigMap")["dtm-config"]["data"]["cluster.toml"])


def _ports(cfg: ClusterConfig) -> dict[str, int]:
    return {name: c.port for name, c in cfg.components}


def test_the_statefulset_runs_exactly_the_configs_nodes() -> None:
    cfg = _k8s_config()
    store = _kind("StatefulSet")["store"]
    pods = [f"store-{i}" for i in range(store["spec"]["replicas"])]
    assert [n.name for n in cfg.node] == pods
    assert {n.host for n in cfg.node} == {f"{p}.{store['spec']['serviceName']}" for p in pods}
    assert _kind("Service")[store["spec"]["serviceName"]]["spec"]["clusterIP"] == "None"


def test_every_service_port_is_the_configs_and_every_component_binds_the_wildcard() -> None:
    cfg = _k8s_config()
    services = _kind("Service")
    ports = _ports(cfg)
    for name in ("balancer", "handler", "sync"):
        assert services[name]["spec"]["ports"][0]["targetPort"] == ports[name]
        assert getattr(cfg, name).host == name
    for n in cfg.node:
        assert services["store"]["spec"]["ports"][0]["targetPort"] == n.port
    assert {c.bind_host for _, c in cfg.components} == {"0.0.0.0"}


def test_every_container_probes_itself_with_dtm_health_and_gets_the_credential() -> None:
    workloads = [*_kind("StatefulSet").values(), *_kind("Deployment").values()]
    assert {w["metadata"]["name"] for w in workloads} == {"store", "balancer", "handler", "sync"}
    for w in workloads:
        spec = w["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        for c in spec["containers"]:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert c[probe]["exec"]["command"] == ["dtm", "health"], (w, probe)
            env = {e["name"]: e for e in c["env"]}
            assert {"DTM_COMPONENT", "DTM_CONFIG", "DTM_CLUSTER_SECRET"} <= set(env)
            ref = env["DTM_CLUSTER_SECRET"]["valueFrom"]["secretKeyRef"]
            assert ref["name"] in _kind("Secret")


def test_the_compose_file_runs_the_compose_configs_components() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    cfg = parse_config((ROOT / "deploy" / "cluster.compose.toml").read_text())
    services = compose["services"]
    names = [name for name, _ in cfg.components]
    assert set(services) == {*names, "cli"}
    for name in names:
        svc = services[name]
        assert svc["environment"]["DTM_COMPONENT"] == name
        assert svc["hostname"] == name == dict(cfg.components)[name].host
        assert svc["healthcheck"]["test"] == ["CMD", "dtm", "health"]
    for node in cfg.node:
        assert services[node.name]["command"] == ["node", "--name", node.name]
        assert f"{node.name}-data" in compose["volumes"]
    published = services["handler"]["ports"][0]
    assert published.startswith("127.0.0.1:") and published.endswith(f":{cfg.handler.port}")


def test_the_manifests_pass_kubernetes_validate() -> None:
    pytest.importorskip("kubernetes_validate", reason="the deploy extra: pip install '.[deploy]'")
    files = sorted(str(f) for f in K8S.glob("*.yaml"))
    argv = [sys.executable, "-m", "kubernetes_validate", "-k", "1.33.0", "--strict", *files]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_the_systemd_units_pass_systemd_analyze_verify() -> None:
    done = subprocess.run(
        [str(ROOT / "deploy" / "systemd" / "verify.sh")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_swarm_stack_runs_its_configs_components_each_at_its_own_address() -> None:
    stack = yaml.safe_load((ROOT / "deploy" / "swarm" / "stack.yaml").read_text())
    cfg = parse_config((ROOT / "deploy" / "swarm" / "cluster.swarm.toml").read_text())
    services = stack["services"]
    assert set(services) == {name for name, _ in cfg.components}
    for name, svc in services.items():
        # a virtual IP is not the task's own address: the sync and the balancer must see tasks
        assert svc["deploy"]["endpoint_mode"] == "dnsrr"
        assert svc["environment"]["DTM_COMPONENT"] == name == dict(cfg.components)[name].host
        secret = svc["secrets"][0]
        assert f"/run/secrets/{secret['target']}" == cfg.cluster.secret_file
        assert (secret["uid"], secret["mode"]) == ("10001", 0o400)
    assert stack["configs"]["dtm_cluster_toml"]["file"] == "./cluster.swarm.toml"


def test_the_swarm_stack_runs_two_balancers_and_two_handlers_on_separate_hosts() -> None:
    stack = yaml.safe_load((ROOT / "deploy" / "swarm" / "stack.yaml").read_text())
    cfg = parse_config((ROOT / "deploy" / "swarm" / "cluster.swarm.toml").read_text())
    for name in ("balancer", "handler"):
        deploy = stack["services"][name]["deploy"]
        assert deploy["replicas"] == 2
        assert deploy["placement"]["max_replicas_per_node"] == 1
    handler = stack["services"]["handler"]
    assert handler["ports"][0]["mode"] == "host"  # one handler per host, each published there
    # both handlers read one users file: a swarm secret, not a host's volume
    users = {s["target"]: s for s in handler["secrets"]}["dtm_users"]
    assert f"/run/secrets/{users['target']}" == str(cfg.users_path)
    assert (users["uid"], users["mode"]) == ("10001", 0o400)


def test_kubernetes_runs_two_balancers_and_two_handlers_sharing_one_users_secret() -> None:
    deployments = _kind("Deployment")
    for name in ("balancer", "handler"):
        assert deployments[name]["spec"]["replicas"] == 2
    assert "handler-data" not in _kind("PersistentVolumeClaim")  # nothing per-pod to keep
    spec = deployments["handler"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["users"]["secret"]["secretName"] == "dtm-users"
    assert "emptyDir" in volumes["data"]
    (init,) = spec["initContainers"]
    cfg = _k8s_config()
    # the secret's file is copied to the users file the config names, private to the uid
    assert init["command"][:3] == ["install", "-m", "0600"]
    assert init["command"][-1] == str(cfg.users_path)
    assert "users.json" in _kind("Secret")["dtm-users"]["stringData"]
