"""The balancer's pure parts: retry rule, spreading rule, timeout rule, HTTP/1 framing."""

from __future__ import annotations

import contextlib

import httptools
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtm.balancer.http1 import (
    RequestHead,
    ResponseHead,
    UpstreamProtocolError,
    request_head,
    response_head,
)
from dtm.balancer.policy import is_not_caught_up, may_retry
from dtm.balancer.spread import attempt_order
from dtm.balancer.timeouts import read_timeout_ms
from dtm.errors import ErrSyntaxInvalidArgs

# ---------------------------------------------------------------- retry rule


@pytest.mark.parametrize(
    ("method", "path", "ok"),
    [
        ("GET", "/v1/kv/a", True),
        ("HEAD", "/v1/kv/a", True),
        ("PUT", "/v1/kv/a", True),
        ("DELETE", "/v1/kv/a", True),
        ("POST", "/v1/replicate", True),
        ("POST", "/v1/purge", True),
        ("POST", "/v1/tasks", False),
        ("PATCH", "/v1/kv/a", False),
        ("POST", "/v1/replicate/x", False),
    ],
)
def test_retry_after_reaching_a_node_only_when_idempotent(method: str, path: str, ok: bool) -> None:
    assert may_retry(method, path, reached_node=True) is ok
    assert may_retry(method, path, reached_node=False) is True


def test_not_caught_up_only_for_reads() -> None:
    body = b'{"error":"ErrNotCaughtUp","message":"node store2 has not caught up"}'
    assert is_not_caught_up("GET", 409, body)
    assert not is_not_caught_up("PUT", 409, body)
    assert is_not_caught_up("DELETE", 409, body)  # a delete waits for the session like a read
    assert not is_not_caught_up("GET", 200, body)
    assert not is_not_caught_up("GET", 409, b'{"error":"ErrAmbiguousID","message":"x"}')


# ---------------------------------------------------------------- spreading rule


def test_round_robin_over_healthy_nodes_then_ejected_ones() -> None:
    assert attempt_order([True, True, True], 0) == [0, 1, 2]
    assert attempt_order([True, True, True], 4) == [1, 2, 0]
    assert attempt_order([False, True, True], 0) == [1, 2, 0]
    assert attempt_order([False, True, True], 1) == [1, 2, 0]
    assert attempt_order([False, True, True], 2) == [2, 1, 0]
    assert attempt_order([False, False], 1) == [1, 0]
    assert attempt_order([], 3) == []


def test_round_robin_is_even() -> None:
    firsts = [attempt_order([True, True], t)[0] for t in range(1000)]
    assert firsts.count(0) == firsts.count(1) == 500


# ---------------------------------------------------------------- timeout rule


def test_a_client_chosen_wait_is_added_to_the_read_timeout() -> None:
    assert read_timeout_ms(2000, 500) == 2500
    assert read_timeout_ms(0, 500) == 500
    assert parse_req(b"GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nX-Dtm-Wait: 1200").wait_ms == 1200
    assert parse_req(b"GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nX-Dtm-Wait: -5").wait_ms == 0
    assert parse_req(b"GET /v1/kv/a HTTP/1.1\r\nHost: h\r\nX-Dtm-Wait: abc").wait_ms == 0


# ---------------------------------------------------------------- HTTP/1 heads


class _Collect:
    """Feeds one message to llhttp (strict) and keeps what its callbacks saw."""

    def __init__(self, raw: bytes, response: bool = False) -> None:
        self.url = b""
        self.pairs: list[tuple[bytes, bytes]] = []
        self.parser: httptools.HttpRequestParser | httptools.HttpResponseParser
        if response:
            self.parser = httptools.HttpResponseParser(self)
        else:
            self.parser = httptools.HttpRequestParser(self)
        with contextlib.suppress(httptools.HttpParserUpgrade):  # our check refuses it
            self.parser.feed_data(raw)

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.pairs.append((name, value))

    def on_headers_complete(self) -> None:
        p = self.parser
        self.version = p.get_http_version()
        self.keep_alive = p.should_keep_alive()
        if isinstance(p, httptools.HttpRequestParser):
            self.method = p.get_method()
        else:
            self.status = p.get_status_code()


def parse_req(raw: bytes) -> RequestHead:
    c = _Collect(raw + b"\r\n\r\n")
    return request_head(c.method, c.url, c.version, c.pairs, c.keep_alive)


def parse_resp(raw: bytes, method: str) -> ResponseHead:
    c = _Collect(raw + b"\r\n\r\n", response=True)
    return response_head(c.status, c.pairs, c.keep_alive, method)


def test_request_head_drops_hop_by_hop_headers_and_keeps_the_rest() -> None:
    head = parse_req(
        b"PUT /v1/kv/a?x=1 HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Private\r\n"
        b"X-Private: 1\r\nKeep-Alive: 5\r\nX-Dtm-Hlc: 42\r\nContent-Length: 2\r\n"
        b"Expect: 100-continue\r\nTE: trailers\r\nX-Dtm-Wait: 25000"
    )
    assert (head.method, head.path, head.target) == ("PUT", "/v1/kv/a", b"/v1/kv/a?x=1")
    assert head.headers == [(b"Host", b"h"), (b"X-Dtm-Hlc", b"42"), (b"X-Dtm-Wait", b"25000")]
    assert head.content_length == 2 and head.keep_alive and head.expect_continue
    assert head.wait_ms == 10_000  # capped at the node's maximum
    assert head.upstream_bytes(b"{}") == (
        b"PUT /v1/kv/a?x=1 HTTP/1.1\r\nHost: h\r\nX-Dtm-Hlc: 42\r\nX-Dtm-Wait: 25000\r\n"
        b"Content-Length: 2\r\n\r\n{}"
    )


def test_keep_alive_defaults() -> None:
    assert not parse_req(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close").keep_alive
    assert not parse_req(b"GET / HTTP/1.0\r\nHost: h").keep_alive
    assert parse_req(b"GET / HTTP/1.0\r\nHost: h\r\nConnection: Keep-Alive").keep_alive
    assert parse_req(b"GET / HTTP/1.0").host is None  # HTTP/1.0 has no Host of its own


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/2.0\r\nHost: h",
        b"GET http://x/ HTTP/1.1\r\nHost: h",
        b"GET / HTTP/1.1",
        b"GET / HTTP/1.1\r\nHost: h\r\nHost: h",
        b"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked",
        b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade",
    ],
)
def test_what_llhttp_takes_leniently_is_refused(head: bytes) -> None:
    with pytest.raises(ErrSyntaxInvalidArgs):
        parse_req(head)


def test_response_framing() -> None:
    r = parse_resp(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Dtm-Session: {}", "GET")
    assert (r.status, r.content_length, r.chunked, r.keep_alive) == (200, 5, False, True)
    assert r.client_bytes(b"X-Dtm-Upstream: s1\r\n", True) == (
        b"HTTP/1.1 200 OK\r\nX-Dtm-Session: {}\r\nContent-Length: 5\r\nX-Dtm-Upstream: s1\r\n\r\n"
    )
    r = parse_resp(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked", "GET")
    assert r.chunked and r.keep_alive
    assert b"Transfer-Encoding: chunked\r\n" in r.client_bytes(b"", True)
    assert b"Content-Length: 7\r\n" in r.client_bytes(b"", True, body_len=7)
    r = parse_resp(b"HTTP/1.1 200 OK", "GET")
    assert r.content_length == -1 and not r.keep_alive
    r = parse_resp(b"HTTP/1.1 200 OK\r\nContent-Length: 9", "HEAD")
    assert r.content_length == 0 and b"Content-Length: 9" in r.client_bytes(b"", True)
    assert parse_resp(b"HTTP/1.1 204 No Content", "GET").content_length == 0
    assert not parse_resp(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0", "GET"
    ).keep_alive
    with pytest.raises(UpstreamProtocolError):
        parse_resp(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip", "GET")
    # the reason phrase is ours, not the node's
    assert (
        parse_resp(b"HTTP/1.1 404 Whatever\r\nContent-Length: 0", "GET")
        .client_bytes(b"", True)
        .startswith(b"HTTP/1.1 404 Not Found\r\n")
    )


@given(
    st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=6),
    st.integers(0, 100),
)
def test_writes_try_unfenced_healthy_nodes_first(nodes: list[tuple[bool, bool]], turn: int) -> None:
    healthy = [h for h, _ in nodes]
    fenced = [f for _, f in nodes]
    order = attempt_order(healthy, turn, fenced)
    assert sorted(order) == list(range(len(nodes)))  # every node once
    ranks = [(not healthy[i], fenced[i]) for i in order]
    assert ranks == sorted(ranks)  # healthy unfenced, healthy fenced, then ejected
    # reads ignore the fence
    assert attempt_order(healthy, turn) == attempt_order(healthy, turn, [False] * len(nodes))


def test_a_fenced_node_gets_writes_only_when_every_node_is_fenced() -> None:
    assert attempt_order([True, True], 0, [True, False]) == [1, 0]
    assert attempt_order([True, True], 1, [True, False]) == [1, 0]
    assert attempt_order([True, True], 1, [True, True]) == [1, 0]
    assert attempt_order([True, False], 0, [True, False]) == [0, 1]
