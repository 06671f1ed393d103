"""The cluster credential on every internal aiohttp endpoint, and the per-request guards.

Real node, sync and handler processes; each internal endpoint answers 401 with a JSON error body
and ``WWW-Authenticate: Bearer`` without the credential or with a wrong one, and works with either
of the two secrets a rotating secret file holds. A loopback listener refuses a foreign ``Host``
(DNS rebinding) and a body that is not JSON (cross-site "simple" requests); a component refuses
to start on a non-loopback address without a credential, or with a secret file others can read.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.harness import LocalCluster, Response, request

from dtm.auth import new_secret

NODE_ENDPOINTS = [
    ("GET", "/metrics", None),
    ("GET", "/v1/status", None),
    ("GET", "/v1/kv", None),
    ("GET", "/v1/kv/k1", None),
    ("PUT", "/v1/kv/k1", {"value": 1}),
    ("DELETE", "/v1/kv/k1", None),
    ("GET", "/v1/changes?since=0&wait=0", None),
    ("POST", "/v1/replicate", {"source": "store2", "epoch": "e", "source_version": 0, "rows": []}),
    ("POST", "/v1/purge", {"rows": []}),
    ("GET", "/v1/digest", None),
    ("GET", "/v1/digest/0", None),
    ("GET", "/v1/nope", None),
]
SYNC_ENDPOINTS = [
    ("GET", "/v1/status", None),
    ("GET", "/v1/conflicts", None),
    ("GET", "/metrics", None),
    ("POST", "/v1/forget", {"node": "store9"}),
]
HANDLER_ENDPOINTS = [("GET", "/metrics", None), ("GET", "/v1/status", None)]


@pytest.fixture
def rotating(cluster: Callable[..., LocalCluster]) -> Iterator[tuple[LocalCluster, str]]:
    """Two nodes, the sync and the handler, whose secret file holds two secrets."""
    c = cluster(nodes=2)
    second = new_secret()
    c.secret_path.write_text(f"# rotating\n{c.secret}\n{second}\n")
    c.start_nodes()
    c.start("balancer")
    c.start("sync")
    c.start("handler")
    yield c, second


def _targets(c: LocalCluster) -> list[tuple[str, str, str, object]]:
    out = [("store1", m, p, b) for m, p, b in NODE_ENDPOINTS]
    out += [("sync", m, p, b) for m, p, b in SYNC_ENDPOINTS]
    out += [("handler", m, p, b) for m, p, b in HANDLER_ENDPOINTS]
    return out


def _is_401(r: Response) -> bool:
    return (
        r.status == 401
        and r.headers.get("content-type", "").startswith("application/json")
        and r.json()["error"] == "ErrUnauthorized"
        and r.headers.get("www-authenticate", "").startswith("Bearer")
    )


def test_every_internal_endpoint_needs_the_credential(rotating: tuple[LocalCluster, str]) -> None:
    c, second = rotating
    for comp, method, path, body in _targets(c):
        url = c.url(comp) + path
        none = request(method, url, body, auth=False)  # type: ignore[arg-type]
        assert _is_401(none), (comp, method, path, none)
        wrong = "Bearer " + new_secret()
        bad = request(method, url, body, headers={"Authorization": wrong})  # type: ignore[arg-type]
        assert _is_401(bad), (comp, method, path, bad)
        basic = request(method, url, body, headers={"Authorization": "Basic " + c.secret})  # type: ignore[arg-type]
        assert _is_401(basic), (comp, method, path, basic)
        for secret in (c.secret, second):
            r = request(method, url, body, headers={"Authorization": f"Bearer {secret}"})  # type: ignore[arg-type]
            assert r.status != 401, (comp, method, path, r)
            assert r.headers["content-type"].split(";")[0] in ("application/json", "text/plain")
    for comp in ("store1", "store2", "sync", "handler", "balancer"):
        assert request("GET", c.url(comp) + "/healthz", auth=False).status == 200, comp


def test_the_cluster_works_and_the_secret_is_never_logged(
    rotating: tuple[LocalCluster, str],
) -> None:
    c, second = rotating
    made = request("POST", c.url("handler") + "/v1/tasks", {"text": "through every hop"})
    assert made.status == 201, made
    status = request("GET", c.url("sync") + "/v1/status")
    assert status.status == 200 and status.json()["nodes"] == ["store1", "store2"]
    c.stop_all()
    for log in (c.root / "logs").glob("*.log"):
        text = log.read_text(errors="replace")
        assert c.secret not in text and second not in text, log


def test_loopback_listeners_answer_only_loopback_host_names(
    rotating: tuple[LocalCluster, str],
) -> None:
    c, _ = rotating
    for comp in ("store1", "sync", "handler"):
        url = c.url(comp) + "/healthz"
        for host in ("evil.example", "evil.example:80", "127.0.0.2", "localhost.evil", "[::2]"):
            r = request("GET", url, headers={"Host": host})
            assert r.status == 421 and r.json()["error"] == "ErrSyntaxInvalidArgs", (comp, host)
        for host in ("localhost", "LOCALHOST:1", "127.0.0.1:9", "[::1]", "[::1]:7400"):
            assert request("GET", url, headers={"Host": host}).status == 200, (comp, host)


def test_a_body_must_be_json(rotating: tuple[LocalCluster, str]) -> None:
    c, _ = rotating
    cases = [
        ("store1", "PUT", "/v1/kv/k2", b'{"value": 1}'),
        ("store1", "POST", "/v1/replicate", b"{}"),
        ("sync", "POST", "/v1/forget", b'{"node": "store1"}'),
        ("handler", "POST", "/v1/tasks", b'{"text": "x"}'),
    ]
    for comp, method, path, body in cases:
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
            r = request(method, c.url(comp) + path, body, headers={"Content-Type": ctype})
            assert r.status == 415 and r.json()["error"] == "ErrSyntaxInvalidArgs", (comp, r)
    assert request("GET", c.url("sync") + "/v1/status").json()["forgotten"] == []


def _start_fails(c: LocalCluster, node: str) -> tuple[int, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("DTM_CLUSTER_SECRET", None)
    argv = [sys.executable, "-m", "dtm.run", "node", "--config", str(c.config_path)]
    proc = subprocess.run(
        [*argv, "--name", node], capture_output=True, text=True, timeout=30, env=env, check=False
    )
    return proc.returncode, proc.stderr


def test_no_credential_means_loopback_only(cluster: Callable[..., LocalCluster]) -> None:
    c = cluster(nodes=1, node_hosts={"store1": "0.0.0.0"})
    text = c.config_path.read_text().replace('secret_file = "secret"', "")
    c.config_path.write_text(text)
    code, err = _start_fails(c, "store1")
    assert code == 2, err
    assert "cannot start: ErrSyntaxInvalidArgs: refusing to listen on '0.0.0.0'" in err, err


def test_a_secret_file_others_can_read_is_refused(cluster: Callable[..., LocalCluster]) -> None:
    c = cluster(nodes=1)
    os.chmod(c.secret_path, 0o644)
    code, err = _start_fails(c, "store1")
    assert code == 2, err
    assert "cannot start: ErrSyntaxInvalidArgs: the cluster secret file" in err, err
    assert "readable by others" in err and c.secret not in err
    assert not Path(c.db_path("store1")).exists()
