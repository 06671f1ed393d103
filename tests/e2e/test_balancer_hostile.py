"""The balancer against hostile clients: RFC 9112 framing rules, smuggling, the credential,
internal paths, Host and Content-Type checks, and clock-fenced nodes. Behind it stands a
recording fake node (`fakenode.FakeNode`), so each test can say what was, and was not, forwarded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakenode import FakeNode
from tests.harness import LocalCluster, raw_exchange, request, wait_until

from dtm import wire

FAST = {"health_interval_ms": 100, "health_timeout_ms": 300, "connect_timeout_ms": 300}


class Rig:
    """One balancer in front of one recording fake node."""

    def __init__(self, root: Path) -> None:
        self.c = LocalCluster(
            root, nodes=1, sections={"balancer": {**FAST, "head_timeout_ms": 2000}}
        )
        self.node = FakeNode(self.c.ports["store1"]).start()
        self.c.start("balancer")
        self.port = self.c.ports["balancer"]
        self.auth = b"Authorization: " + self.c.auth_header.encode() + b"\r\n"
        self._n = 0

    def raw(self, data: bytes, timeout: float = 5.0) -> bytes:
        """Send raw bytes, read until the balancer closes the connection."""
        return raw_exchange(self.port, data, timeout)

    def forwarded_since_sentinel(self) -> list[bytes]:
        """The targets the node received, up to a fresh sentinel request (sent now and waited
        for: everything forwarded before it has arrived)."""
        self._n += 1
        target = f"/v1/kv/sentinel{self._n}"
        got = request("GET", f"{self.c.url('balancer')}{target}")
        assert got.status == 200, got
        seen = [s.target for s in self.node.requests()]
        assert seen[-1] == target.encode()
        self.node.seen.clear()
        return seen[:-1]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    r = Rig(tmp_path_factory.mktemp("hostile"))
    try:
        r.forwarded_since_sentinel()
        yield r
    finally:
        r.c.stop_all()
        r.node.stop()


H = b"Host: localhost\r\n"
PUT = b"PUT /v1/kv/a HTTP/1.1\r\n" + H + b"Content-Type: application/json\r\n"

# Each: the request (the credential is added after the start line), refused 400.
RULES = {
    "bare_cr": b"GET /v1/kv/a HTTP/1.1\r\nHost: localhost\rX-A: 1\r\n\r\n",
    "bare_lf": b"GET /v1/kv/a HTTP/1.1\r\nHost: localhost\nX-A: 1\r\n\r\n",
    "bare_lf_everywhere": b"GET /v1/kv/a HTTP/1.1\nHost: localhost\n\n",
    "nul_in_header": b"GET /v1/kv/a HTTP/1.1\r\nHost: localhost\r\nX-A: a\x00b\r\n\r\n",
    "obs_fold": b"GET /v1/kv/a HTTP/1.1\r\nHost: localhost\r\nX-A: a\r\n b\r\n\r\n",
    "chunk_size_0x": PUT + b'Transfer-Encoding: chunked\r\n\r\n0xb\r\n{"value":1}\r\n0\r\n\r\n',
    "chunk_size_plus": PUT + b'Transfer-Encoding: chunked\r\n\r\n+b\r\n{"value":1}\r\n0\r\n\r\n',
    "chunk_size_underscore": PUT
    + b'Transfer-Encoding: chunked\r\n\r\n0_b\r\n{"value":1}\r\n0\r\n\r\n',
    "te_vertical_tab": PUT + b'Transfer-Encoding: \x0bchunked\r\n\r\nb\r\n{"value":1}\r\n0\r\n\r\n',
    "duplicate_content_length": PUT + b"Content-Length: 11\r\nContent-Length: 11\r\n\r\n"
    b'{"value":1}',
    "conflicting_content_length": PUT + b"Content-Length: 11\r\nContent-Length: 12\r\n\r\n"
    b'{"value":1} ',
    "content_length_list": PUT + b'Content-Length: 11, 11\r\n\r\n{"value":1}',
    "content_length_and_transfer_encoding": PUT
    + b'Content-Length: 16\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n{"value":1}\r\n0\r\n\r\n',
    "transfer_encoding_not_only_chunked": PUT
    + b'Transfer-Encoding: gzip, chunked\r\n\r\nb\r\n{"value":1}\r\n0\r\n\r\n',
    "transfer_encoding_unknown": PUT + b"Transfer-Encoding: identity\r\n\r\n",
    "missing_host": b"GET /v1/kv/a HTTP/1.1\r\n\r\n",
    "repeated_host": b"GET /v1/kv/a HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\n\r\n",
    "http_version_2": b"GET /v1/kv/a HTTP/2.0\r\nHost: localhost\r\n\r\n",
    "absolute_form_target": b"GET http://localhost/v1/kv/a HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "upgrade": b"GET /v1/kv/a HTTP/1.1\r\nHost: localhost\r\nConnection: upgrade\r\n"
    b"Upgrade: websocket\r\n\r\n",
}


def _with_auth(raw: bytes, auth: bytes) -> bytes:
    line, sep, rest = raw.partition(b"\r\n")
    if not sep:
        line, sep, rest = raw.partition(b"\n")
    return line + sep + auth.replace(b"\r\n", sep) + rest


@pytest.mark.parametrize("rule", sorted(RULES))
def test_rfc9112_rule_refused_with_400_and_nothing_forwarded(rig: Rig, rule: str) -> None:
    reply = rig.raw(_with_auth(RULES[rule], rig.auth))
    assert reply.startswith(b"HTTP/1.1 400 "), reply[:300]
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"Connection: close" in head
    assert json.loads(body)["error"] == "ErrSyntaxInvalidArgs"
    assert rig.forwarded_since_sentinel() == []
    assert rig.node.garbage == []


SMUGGLE = b"GET /v1/kv/smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n0\r\n\r\n",
        b"Content-Length: %d\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n",
        b"Content-Length: 0\r\nContent-Length: %d\r\n\r\n",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\nX-N: %d\r\n\r\n0\r\n\r\n",
        b"Transfer-Encoding: chunked\r\nX-N: %d\r\n\r\n0x0\r\n\r\n",
        b"Transfer-Encoding: chunked\r\nX-N: %d\r\n\r\n1;\n\r\nx\r\n0\r\n\r\n",
    ],
)
def test_ambiguous_framing_never_yields_a_second_request(rig: Rig, framing: bytes) -> None:
    head = b"POST /v1/kv/a HTTP/1.1\r\n" + H + rig.auth + b"Content-Type: application/json\r\n"
    data = head + (framing % len(SMUGGLE)) + SMUGGLE
    reply = rig.raw(data)
    assert reply.startswith(b"HTTP/1.1 400 "), reply[:300]
    forwarded = rig.forwarded_since_sentinel()
    assert b"/v1/kv/smuggled" not in forwarded and forwarded == []


# ---------------------------------------------------------------- who may pass


def test_no_or_a_wrong_credential_is_401_and_not_forwarded(rig: Rig) -> None:
    b = rig.c.url("balancer")
    for headers in ({}, {"Authorization": "Bearer " + "x" * 40}, {"Authorization": "Basic e30="}):
        for path in ("/v1/kv/a", "/v1/status", "/metrics"):
            got = request("GET", b + path, headers=headers, auth=False)
            assert got.status == 401, (path, got)
            assert got.json()["error"] == "ErrUnauthorized"
            assert got.headers["www-authenticate"] == "Bearer"
    assert request("GET", b + "/healthz", auth=False).status == 200
    assert rig.forwarded_since_sentinel() == []


def test_the_credential_is_forwarded_to_the_node(rig: Rig) -> None:
    assert request("GET", rig.c.url("balancer") + "/v1/kv/a").status == 200
    (seen,) = [s for s in rig.node.requests() if s.target == b"/v1/kv/a"]
    assert seen.header(b"authorization") == rig.c.auth_header.encode()
    rig.forwarded_since_sentinel()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/replicate"),
        ("POST", "/v1/purge"),
        ("GET", "/v1/digest"),
        ("GET", "/v1/digest/3"),
        ("GET", "/v1/changes?since=0"),
        ("GET", "/v1/kv/"),
        ("GET", "/v1/kv/.."),
        ("GET", "/v1/kv/%2e%2e/replicate"),
        ("GET", "/v1/kv/../replicate"),
        ("GET", "/v1/tasks"),
    ],
)
def test_internal_paths_are_not_reachable(rig: Rig, method: str, path: str) -> None:
    body = {"rows": []} if method == "POST" else None
    got = request(method, rig.c.url("balancer") + path, body)
    assert got.status == 404 and got.json()["error"] == "ErrNoDataFound", got
    assert rig.forwarded_since_sentinel() == []


def test_host_must_be_the_loopback_on_a_loopback_listener(rig: Rig) -> None:
    for host in (b"evil.example", b"127.0.0.2", b"localhost.evil.example", b"localhost:x"):
        reply = rig.raw(b"GET /v1/kv/a HTTP/1.1\r\nHost: " + host + b"\r\n" + rig.auth + b"\r\n")
        assert reply.startswith(b"HTTP/1.1 400 "), (host, reply[:200])
    assert rig.forwarded_since_sentinel() == []
    for host in (b"localhost", b"LOCALHOST:7401", b"127.0.0.1:1", b"[::1]:80"):
        reply = rig.raw(
            b"GET /v1/kv/a HTTP/1.1\r\nHost: "
            + host
            + b"\r\nConnection: close\r\n"
            + rig.auth
            + b"\r\n"
        )
        assert reply.startswith(b"HTTP/1.1 200 "), (host, reply[:200])
    assert len(rig.forwarded_since_sentinel()) == 4


def test_a_body_must_be_json(rig: Rig) -> None:
    b = rig.c.url("balancer") + "/v1/kv/a"
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        got = request("PUT", b, b'{"value":1}', headers={"Content-Type": ctype})
        assert got.status == 415 and got.json()["error"] == "ErrSyntaxInvalidArgs", got
    reply = rig.raw(
        PUT.replace(b"Content-Type: application/json\r\n", b"")
        + rig.auth
        + b'Content-Length: 11\r\n\r\n{"value":1}'
    )
    assert reply.startswith(b"HTTP/1.1 415 ")
    assert rig.forwarded_since_sentinel() == []
    ok = request(
        "PUT", b, b'{"value":1}', headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert ok.status == 200
    assert rig.forwarded_since_sentinel() == [b"/v1/kv/a"]


def test_no_credential_on_a_public_address_refuses_to_start(tmp_path: Path) -> None:
    c = LocalCluster(tmp_path, nodes=1)
    text = c.config_path.read_text().replace('secret_file = "secret"\n', "")
    text = text.replace('[balancer]\nhost = "127.0.0.1"', '[balancer]\nhost = "0.0.0.0"')
    c.config_path.write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "DTM_CLUSTER_SECRET"}
    cmd = [sys.executable, "-m", "dtm.run", "balancer", "--config", str(c.config_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, timeout=20)
    assert done.returncode == 2
    assert (
        b"refusing to listen on '0.0.0.0' (not a loopback address) without the cluster credential"
        in done.stderr + done.stdout
    )


# ---------------------------------------------------------------- clock-fenced nodes


def test_client_writes_go_to_unfenced_nodes(tmp_path: Path) -> None:
    c = LocalCluster(tmp_path, nodes=2, sections={"balancer": FAST})
    fenced = FakeNode(c.ports["store1"], "store1", fenced=True).start()
    other = FakeNode(c.ports["store2"], "store2").start()
    try:
        c.start("balancer")
        b = c.url("balancer")

        def seen_fenced() -> bool:
            st = wire.decode(request("GET", b + "/v1/status").body, wire.BalancerStatus)
            return [n.fenced for n in st.nodes] == [True, False]

        wait_until(seen_fenced, 5, 0.02, "the balancer to see store1's fence")
        metrics = request("GET", b + "/metrics").body.decode()
        assert 'dtm_balancer_upstream_fenced{node="store1"} 1.0' in metrics
        for i in range(10):
            assert request("PUT", f"{b}/v1/kv/w{i}", {"value": i}).status == 200
            assert request("DELETE", f"{b}/v1/kv/w{i}").status == 200
        assert fenced.requests() == []
        assert len(other.requests()) == 20
        for i in range(10):  # reads still spread over both
            assert request("GET", f"{b}/v1/kv/w{i}").status == 200
        assert len(fenced.requests()) == 5

        other.fenced = True  # every node fenced: tried anyway, the node's 503 reaches the client

        def all_fenced() -> bool:
            st = wire.decode(request("GET", b + "/v1/status").body, wire.BalancerStatus)
            return all(n.fenced for n in st.nodes)

        wait_until(all_fenced, 5, 0.02, "both nodes fenced")
        got = request("PUT", f"{b}/v1/kv/last", {"value": 1})
        assert got.status == 503 and got.json()["error"] == "ErrClockSkew"
        assert [s.target for s in fenced.requests()][-1] == b"/v1/kv/last"
        assert [s.target for s in other.requests()][-1] == b"/v1/kv/last"
    finally:
        c.stop_all()
        fenced.stop()
        other.stop()
