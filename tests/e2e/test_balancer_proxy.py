"""The balancer in front of real data nodes: spreading, byte-exact forwarding, session retries,
long-polls, its own endpoints and its errors."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from tests.harness import LocalCluster, raw_exchange, request, wait_until

from dtm import wire

FAST = {"health_interval_ms": 100, "health_timeout_ms": 300, "connect_timeout_ms": 300}


def _up(
    cluster: Callable[..., LocalCluster],
    node_options: dict[str, dict[str, Any]] | None = None,
    **balancer: Any,
) -> LocalCluster:
    c = cluster(nodes=2, sections={"balancer": {**FAST, **balancer}}, node_options=node_options)
    c.start_nodes()
    c.start("balancer")
    return c


def _status(c: LocalCluster) -> wire.BalancerStatus:
    return wire.decode(request("GET", c.url("balancer") + "/v1/status").body, wire.BalancerStatus)


def test_spreads_evenly_and_answers_its_own_endpoints(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = _up(cluster)
    b = c.url("balancer")
    for url in c.node_urls:
        assert request("PUT", f"{url}/v1/kv/even", {"value": 1}).status == 200
    seen = {"store1": 0, "store2": 0}
    conn = http.client.HTTPConnection("127.0.0.1", c.ports["balancer"], timeout=5)
    try:
        for _ in range(1000):  # one keep-alive connection, as a client library would use
            conn.request("GET", "/v1/kv/even", headers={"Authorization": c.auth_header})
            resp = conn.getresponse()
            assert resp.status == 200, resp.read()
            resp.read()
            session = wire.decode(resp.headers[wire.SESSION_HEADER], wire.SessionToken)
            (node,) = session.versions
            assert resp.headers[wire.UPSTREAM_HEADER] == node
            seen[node] += 1
    finally:
        conn.close()
    assert 450 <= seen["store1"] <= 550 and seen["store1"] + seen["store2"] == 1000

    health = request("GET", f"{b}/healthz")
    assert health.status == 200
    assert wire.decode(health.body, wire.Health).component == "balancer"
    st = _status(c)
    assert [n.name for n in st.nodes] == ["store1", "store2"]
    assert all(n.healthy and n.failures == 0 for n in st.nodes)
    assert {n.name: n.requests for n in st.nodes} == seen
    metrics = request("GET", f"{b}/metrics")
    assert metrics.status == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.body.decode()
    assert 'dtm_balancer_upstream_requests_total{node="store1"}' in text
    assert "dtm_balancer_requests_total" in text


def test_bodies_and_dtm_headers_pass_unchanged(cluster: Callable[..., LocalCluster]) -> None:
    c = _up(cluster)
    b = c.url("balancer")
    value = {"text": 'quote " backslash \\ tab \t ünïcødé ✓ \u2028', "pad": "x" * 60000}
    body = json.dumps({"value": value}, ensure_ascii=False).encode()
    # ahead (within the max offset): the node must observe the caller's HLC header
    stamp = (time.time_ns() // 1_000_000 + 300) << 16
    put = request("PUT", f"{b}/v1/kv/bytes", body, {wire.HLC_HEADER: str(stamp)})
    assert put.status == 200, put
    assert put.json()["hlc"] > stamp
    node = put.headers["x-dtm-upstream"]
    assert wire.SESSION_HEADER.lower() in put.headers
    direct = request("GET", f"{c.url(node)}/v1/kv/bytes")
    for _ in range(4):  # whichever node answers, a byte-identical body from the one that has it
        got = request("GET", f"{b}/v1/kv/bytes")
        if got.headers["x-dtm-upstream"] == node:
            assert got.body == direct.body
            assert got.headers["content-length"] == direct.headers["content-length"]
            assert got.headers["content-type"] == direct.headers["content-type"]
        else:
            assert got.status == 404 and got.json()["error"] == "ErrNoDataFound"

    # A chunked request body arrives whole; Expect: 100-continue is honoured.
    conn = http.client.HTTPConnection("127.0.0.1", c.ports["balancer"], timeout=5)
    try:
        parts = iter([b'{"value":', b' {"n": 1}', b"}"])
        conn.request(
            "PUT",
            "/v1/kv/chunked",
            body=parts,
            headers={
                "Transfer-Encoding": "chunked",
                "Authorization": c.auth_header,
                "Content-Type": "application/json",
            },
            encode_chunked=True,
        )
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["value"] == {"n": 1}
    finally:
        conn.close()
    with socket.create_connection(("127.0.0.1", c.ports["balancer"]), timeout=5) as sock:
        sock.sendall(
            b"PUT /v1/kv/cont HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
            b"Content-Length: 12\r\nConnection: close\r\nContent-Type: application/json\r\n"
            b"Authorization: " + c.auth_header.encode() + b"\r\n\r\n"
        )
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b'{"value": 2}')
        reply = b"".join(iter(lambda: sock.recv(65536), b""))
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n"), reply
    assert b'"value":2' in reply


def test_a_slow_client_of_a_large_answer_holds_up_nothing(
    cluster: Callable[..., LocalCluster],
) -> None:
    pages = {"max_page_bytes": 16 * 1024 * 1024}  # one answer larger than the kernel's buffers
    c = _up(cluster, {"store1": pages, "store2": pages})
    big = {"value": "y" * 60000}
    for url in c.node_urls:
        for i in range(120):
            assert request("PUT", f"{url}/v1/kv/big{i:03}", big).status == 200
    direct = request("GET", c.url("store1") + "/v1/kv?limit=200").body
    assert len(direct) > 7_000_000  # more than the kernel buffers: back-pressure
    for _ in range(2):  # one answer from each node
        with socket.create_connection(("127.0.0.1", c.ports["balancer"]), timeout=5) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            sock.sendall(
                b"GET /v1/kv?limit=200 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                b"Authorization: " + c.auth_header.encode() + b"\r\n\r\n"
            )
            time.sleep(0.3)  # let the balancer's buffer toward us fill up
            reply = b"".join(iter(lambda: sock.recv(65536), b""))
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and len(body) == len(direct)
    for _ in range(10):  # the pooled connections still read their next answers at once
        t0 = time.monotonic()
        assert request("GET", c.url("balancer") + "/v1/kv/big000").status == 200
        assert time.monotonic() - t0 < 1.0
    assert all(n.failures == 0 for n in _status(c).nodes)


def test_malformed_requests_get_json_errors(cluster: Callable[..., LocalCluster]) -> None:
    c = _up(cluster, max_body_bytes=1000, head_timeout_ms=400)
    port = c.ports["balancer"]
    auth = b"Authorization: " + c.auth_header.encode() + b"\r\n"
    # A client that stalls mid-head is answered 408 after the head timeout.
    stalled = raw_exchange(port, b"GET /healthz HTTP/1.1\r\n")
    assert stalled.startswith(b"HTTP/1.1 408 ") and b'"ErrRequestTimeout"' in stalled
    for garbage in (
        b"HELLO\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: localhost\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: localhost\r\nBad Header\r\n\r\n",
        b"PUT /v1/kv/a HTTP/1.1\r\nHost: localhost\r\n" + auth + b"Content-Type: application/json"
        b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot hex\r\n",
        b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
    ):
        reply = raw_exchange(port, garbage)
        assert reply.startswith(b"HTTP/1.1 400 "), reply[:200]
        assert b'"error":"ErrSyntaxInvalidArgs"' in reply
    too_big = request("PUT", c.url("balancer") + "/v1/kv/a", b"x" * 2000)
    assert too_big.status == 413 and too_big.json()["error"] == "ErrPayloadTooLarge"
    # Pipelined requests are answered in order on one connection.
    reply = raw_exchange(
        port,
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
        b"GET /v1/kv/none HTTP/1.1\r\nHost: localhost\r\n" + auth + b"\r\n"
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    assert reply.count(b"HTTP/1.1 200 OK") == 2 and reply.count(b"HTTP/1.1 404 ") == 1
    assert reply.index(b"HTTP/1.1 404") > reply.index(b"HTTP/1.1 200")
    assert request("GET", c.url("balancer") + "/healthz").status == 200


def test_not_caught_up_reads_move_to_the_node_that_has_the_write(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = _up(cluster)
    b = c.url("balancer")
    put = request("PUT", c.url("store1") + "/v1/kv/ryw", {"value": "mine"})
    token = put.headers[wire.SESSION_HEADER.lower()]
    headers = {wire.SESSION_HEADER: token, wire.WAIT_HEADER: "0"}
    for _ in range(20):
        got = request("GET", f"{b}/v1/kv/ryw", headers=headers)
        assert got.status == 200, got
        assert got.headers["x-dtm-upstream"] == "store1"
    st = {n.name: n for n in _status(c).nodes}
    assert st["store1"].retries == 10 and st["store2"].requests == 10

    # Nobody has this version: every node says so and the last 409 reaches the client.
    ahead = wire.decode(token, wire.SessionToken)
    ahead = msgspec.structs.replace(ahead, versions={"store1": 10**6})
    headers = {wire.SESSION_HEADER: wire.encode(ahead).decode(), wire.WAIT_HEADER: "0"}
    got = request("GET", f"{b}/v1/kv/ryw", headers=headers)
    assert got.status == 409 and got.json()["error"] == "ErrNotCaughtUp"


def test_a_wait_longer_than_the_read_timeout_does_not_eject_a_node(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = _up(cluster, read_timeout_ms=300)
    b = c.url("balancer")
    put = request("PUT", c.url("store1") + "/v1/kv/w", {"value": 1})
    ahead = wire.decode(put.headers[wire.SESSION_HEADER.lower()], wire.SessionToken)
    ahead = msgspec.structs.replace(ahead, versions={"store1": 10**6})
    headers = {wire.SESSION_HEADER: wire.encode(ahead).decode(), wire.WAIT_HEADER: "700"}
    t0 = time.monotonic()
    got = request("GET", f"{b}/v1/kv/w", headers=headers, timeout=10)
    # Each node waited as asked (longer than the read timeout), then said it is behind.
    assert got.status == 409 and got.json()["error"] == "ErrNotCaughtUp", got
    assert time.monotonic() - t0 >= 1.4
    st = _status(c)
    assert all(n.healthy and n.failures == 0 and n.ejections == 0 for n in st.nodes), st


def test_no_node_answers_503_then_recovers(cluster: Callable[..., LocalCluster]) -> None:
    c = _up(cluster)
    b = c.url("balancer")
    for n in c.node_names:
        c.procs[n].kill()
    got = request("GET", f"{b}/v1/kv/a")
    assert got.status == 503
    err = wire.decode(got.body, wire.ErrorBody)
    assert err.error == "ErrUnavailable" and err.message.startswith("no data node answered")
    assert "store1" in err.message and "store2" in err.message
    assert request("GET", f"{b}/healthz").status == 200
    wait_until(lambda: not any(n.healthy for n in _status(c).nodes), 5, 0.02, "both ejected")
    assert _status(c).unanswered >= 1
    c.start("store2")
    wait_until(lambda: request("GET", f"{b}/v1/kv/a").status == 404, 5, 0.02, "store2 readmitted")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_head_and_get_of_a_missing_key(cluster: Callable[..., LocalCluster], method: str) -> None:
    c = cluster(nodes=1, sections={"balancer": FAST})
    c.start_nodes()
    c.start("balancer")
    got = request(method, c.url("balancer") + "/v1/kv/missing")
    direct = request(method, c.url("store1") + "/v1/kv/missing")
    assert (got.status, got.body) == (direct.status, direct.body)
