"""TLS on every hop, with real certificates from `dtm cluster certs` and real processes."""

from __future__ import annotations

import http.client
import os
import re
import ssl
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from syncutil import converged
from tests.harness import LocalCluster, request, running, wait_until

from dtm.config import parse_config
from dtm.errors import ErrSyntaxInvalidArgs

COMPONENTS = ("store1", "store2", "balancer", "handler", "sync", "operator")


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Two nodes, balancer, handler and sync, all over TLS, client certificates required."""
    root = Path(tmp_path_factory.mktemp("tls"))
    with running(root, ("balancer", "handler", "sync"), tls=True, client_certs=True) as c:
        yield c


def _todo(c: LocalCluster, home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    drop = ("TODO_URL", "TODO_TOKEN", "TODO_CA_FILE", "NO_COLOR")
    base = {k: v for k, v in os.environ.items() if k not in drop}
    base.update(
        HOME=str(home),
        XDG_STATE_HOME=str(home / "state"),
        XDG_CONFIG_HOME=str(home / "config"),
        TODO_URL=c.url("handler"),
        TODO_TOKEN=c.user_token,
    )
    return subprocess.run(
        [sys.executable, "-m", "dtm.cli.main", *args],
        capture_output=True,
        text=True,
        env={**base, **env},
        timeout=30,
        check=False,
    )


def test_cluster_certs_makes_a_ca_and_a_private_key_per_component(
    tls_cluster: LocalCluster,
) -> None:
    d = tls_cluster.root / "certs"
    ca = x509.load_pem_x509_certificate((d / "ca.pem").read_bytes())
    assert stat.S_IMODE((d / "ca.key").stat().st_mode) == 0o600
    for name in COMPONENTS:
        assert stat.S_IMODE((d / f"{name}.key").stat().st_mode) == 0o600, name
        cert = x509.load_pem_x509_certificate((d / f"{name}.pem").read_bytes())
        cert.verify_directly_issued_by(ca)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "localhost" in san.get_values_for_type(x509.DNSName), name
        assert "127.0.0.1" in [str(a) for a in san.get_values_for_type(x509.IPAddress)], name


def test_cluster_certs_adds_the_hosts_given_and_keeps_the_ca(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[[node]]\nname = "store1"\nhost = "10.0.0.5"\nport = 7511\n'
        '[tls]\nca_file = "pki/ca.pem"\ncert_dir = "pki"\n'
    )
    argv = [sys.executable, "-m", "dtm.run", "cluster", "certs", "--config", str(cfg)]
    subprocess.run([*argv, "--hosts", "db.example,10.0.0.9"], check=True, capture_output=True)
    ca_before = (tmp_path / "pki" / "ca.pem").read_bytes()
    subprocess.run(argv, check=True, capture_output=True)
    assert (tmp_path / "pki" / "ca.pem").read_bytes() == ca_before
    ca = x509.load_pem_x509_certificate(ca_before)
    store1 = x509.load_pem_x509_certificate((tmp_path / "pki" / "store1.pem").read_bytes())
    store1.verify_directly_issued_by(ca)
    san = store1.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "10.0.0.5" in [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    # The first run named db.example; the second did not, and each run makes fresh certificates.
    assert "db.example" not in san.get_values_for_type(x509.DNSName)


def test_a_config_with_tls_makes_every_url_https() -> None:
    text = '[[node]]\nname = "store1"\nport = 7511\n[tls]\nca_file = "ca.pem"\n'
    cfg = parse_config(text)
    assert [c.url.split(":")[0] for _, c in cfg.components] == ["https"] * 4
    plain = parse_config('[[node]]\nname = "store1"\nport = 7511\n')
    assert plain.tls is None and plain.node[0].url == "http://127.0.0.1:7511"
    with pytest.raises(ErrSyntaxInvalidArgs, match="tls"):
        parse_config(text + "verify = false\n")
    with pytest.raises(ErrSyntaxInvalidArgs, match="unknown key 'tls'"):
        parse_config('[[node]]\nname = "store1"\nport = 7511\ntls = true\n')


def test_the_whole_cluster_serves_todo_over_tls_and_replicates(
    tls_cluster: LocalCluster, tmp_path: Path
) -> None:
    c = tls_cluster
    ca = str(c.ca_path)
    added = _todo(c, tmp_path, "add", "over tls", TODO_CA_FILE=ca)
    assert added.returncode == 0, added.stderr
    listed = _todo(c, tmp_path, "--json", "list", TODO_CA_FILE=ca)
    assert listed.returncode == 0, listed.stderr
    assert "over tls" in listed.stdout
    rows = converged(c)  # every node holds it: the sync reached both nodes over TLS
    assert any("over tls" in str(row) for row in rows.values()), rows
    sync = request("GET", c.url("sync") + "/v1/status")
    assert sync.status == 200 and sync.json()["forgotten"] == [], sync


def test_a_node_measures_every_peers_clock_over_tls(tls_cluster: LocalCluster) -> None:
    """The clock watch reads each peer's /healthz with the node's own certificate."""
    url = tls_cluster.url("store1") + "/metrics"

    def measured() -> bool:
        text = request("GET", url).body.decode()
        peers = ("store2", "balancer", "handler", "sync")
        return all(f'dtm_node_clock_offset_ms{{peer="{p}"}}' in text for p in peers)

    wait_until(measured, 15.0, 0.2, "store1 to measure every peer's clock")


def test_a_client_that_does_not_trust_the_ca_is_refused(
    tls_cluster: LocalCluster, tmp_path: Path
) -> None:
    c = tls_cluster
    for comp in ("store1", "balancer", "handler", "sync"):
        with pytest.raises(ssl.SSLCertVerificationError):
            request("GET", c.url(comp) + "/healthz", context=ssl.create_default_context())
    run = _todo(c, tmp_path, "list")  # no TODO_CA_FILE: the system's trust store
    assert run.returncode != 0
    assert "certificate verify failed" in run.stderr, run.stderr


def test_with_client_certs_a_component_client_without_a_certificate_is_refused(
    tls_cluster: LocalCluster,
) -> None:
    c = tls_cluster
    anonymous = c.client_context(cert=None)
    for comp in ("store1", "balancer", "sync"):
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            request("GET", c.url(comp) + "/healthz", context=anonymous)
        assert request("GET", c.url(comp) + "/healthz").status == 200  # with a certificate
    # The handler is the public edge: its users have no certificates.
    assert request("GET", c.url("handler") + "/healthz", context=anonymous).status == 200


def test_plain_http_to_a_tls_port_fails(tls_cluster: LocalCluster) -> None:
    c = tls_cluster
    for comp in ("store1", "balancer", "handler", "sync"):
        plain = c.url(comp).replace("https://", "http://")
        with pytest.raises((OSError, http.client.HTTPException)):
            request("GET", plain + "/healthz")


def test_a_tls_key_others_can_read_is_refused(cluster: Callable[..., LocalCluster]) -> None:
    c = cluster(nodes=1, tls=True)
    os.chmod(c.root / "certs" / "store1.key", 0o644)
    argv = [sys.executable, "-m", "dtm.run", "node", "--config", str(c.config_path)]
    proc = subprocess.run(
        [*argv, "--name", "store1"], capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.returncode == 2, proc.stderr
    assert "cannot start: ErrSyntaxInvalidArgs: the TLS key" in proc.stderr, proc.stderr
    assert "readable by others" in proc.stderr


def test_cluster_status_reads_a_tls_cluster_with_the_operator_certificate(
    tls_cluster: LocalCluster, tmp_path: Path
) -> None:
    config = str(tls_cluster.config_path)
    run = _todo(tls_cluster, tmp_path, "cluster", "status", "--config", config)
    assert run.returncode == 0, run.stderr
    assert "store1" in run.stdout and "store2" in run.stdout, run.stdout


def test_the_balancer_readmits_a_node_through_a_tls_health_check(tls_cluster: LocalCluster) -> None:
    """Only a passing health check readmits an ejected node: it must speak TLS with a cert."""
    c = tls_cluster
    status_url = c.url("balancer") + "/v1/status"

    def store2() -> dict[str, object]:
        nodes = request("GET", status_url).json()["nodes"]
        found: dict[str, object] = next(n for n in nodes if n["name"] == "store2")
        return found

    assert str(store2()["url"]).startswith("https://")
    c.procs["store2"].stop()
    wait_until(lambda: store2()["healthy"] is False, 20.0, 0.1, "store2 to be ejected")
    c.restart("store2")
    back = wait_until(
        lambda: (s := store2())["healthy"] is True and s, 20.0, 0.1, "store2 to be readmitted"
    )
    assert back["readmissions"] == 1, back


def test_the_handler_watches_the_nodes_over_tls(tls_cluster: LocalCluster) -> None:
    """The handler's watch of each node's version speaks TLS with the handler's certificate:
    an unchanged list is then served without asking a node."""
    c = tls_cluster
    tasks = c.url("handler") + "/v1/tasks"
    assert request("POST", tasks, {"text": "watched over tls"}).status == 201

    def unasked() -> float:
        text = request("GET", c.url("handler") + "/metrics").body.decode()
        m = re.search(r"^dtm_handler_pages_unasked_total (\S+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    wait_until(
        lambda: request("GET", tasks).status == 200 and unasked() > 0,
        15.0,
        0.05,
        "a list served from the handler's copy, vouched for over TLS",
    )
