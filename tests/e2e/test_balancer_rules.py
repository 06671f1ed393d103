"""The balancer's pure parts: retry rule, spreading rule, timeout rule, HTTP/1 framing."""

from __future__ import annotations

import pytest

from dtm.balancer.http1 import (
    ChunkedScanner,
    UpstreamProtocolError,
    parse_request_head,
    parse_response_head,
)
from dtm.balancer.policy import is_not_caught_up, may_retry
from dtm.balancer.spread import attempt_order
from dtm.balancer.timeouts import read_timeout_ms
from dtm.errors import ErrPayloadTooLarge, ErrSyntaxInvalidArgs

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


def test_long_poll_gets_its_wait_on_top_of_the_read_timeout() -> None:
    assert read_timeout_ms("GET", b"/v1/changes?since=3&wait=2000", 500) == 2500
    assert read_timeout_ms("GET", b"/v1/changes?wait=100&since=3", 500) == 600
    assert read_timeout_ms("GET", b"/v1/changes?since=3", 500) == 500
    assert read_timeout_ms("GET", b"/v1/changes?wait=-5", 500) == 500
    assert read_timeout_ms("GET", b"/v1/changes?wait=abc", 500) == 500
    assert read_timeout_ms("GET", b"/v1/changesx?wait=100", 500) == 500
    assert read_timeout_ms("GET", b"/v1/kv/a?wait=100", 500) == 500
    assert read_timeout_ms("POST", b"/v1/changes?wait=100", 500) == 500


# ---------------------------------------------------------------- HTTP/1 framing


def test_request_head_drops_hop_by_hop_headers_and_keeps_the_rest() -> None:
    head = parse_request_head(
        b"PUT /v1/kv/a?x=1 HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Private\r\n"
        b"X-Private: 1\r\nKeep-Alive: 5\r\nX-Dtm-Hlc: 42\r\nContent-Length: 2\r\n"
        b"Expect: 100-continue\r\nTE: trailers"
    )
    assert (head.method, head.path, head.target) == ("PUT", "/v1/kv/a", b"/v1/kv/a?x=1")
    assert head.lines == [b"Host: h", b"X-Dtm-Hlc: 42"]
    assert head.content_length == 2 and head.keep_alive and head.expect_continue
    assert head.upstream_bytes(b"{}") == (
        b"PUT /v1/kv/a?x=1 HTTP/1.1\r\nHost: h\r\nX-Dtm-Hlc: 42\r\nContent-Length: 2\r\n\r\n{}"
    )


def test_keep_alive_defaults() -> None:
    assert not parse_request_head(b"GET / HTTP/1.1\r\nConnection: close").keep_alive
    assert not parse_request_head(b"GET / HTTP/1.0").keep_alive
    assert parse_request_head(b"GET / HTTP/1.0\r\nConnection: Keep-Alive").keep_alive


@pytest.mark.parametrize(
    "head",
    [
        b"GET /",
        b"GET / HTTP/2.0",
        b"GET http://x/ HTTP/1.1",
        b"CONNECT x:1 HTTP/1.1",
        b"G(T / HTTP/1.1",
        b"GET / HTTP/1.1\r\nNoColon",
        b"GET / HTTP/1.1\r\nBad Name: 1",
        b"GET / HTTP/1.1\r\nName : 1",
        b"GET / HTTP/1.1\r\n folded",
        b"GET / HTTP/1.1\r\nContent-Length: -1",
        b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2",
        b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked",
        b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked",
    ],
)
def test_malformed_requests_are_syntax_errors(head: bytes) -> None:
    with pytest.raises(ErrSyntaxInvalidArgs):
        parse_request_head(head)


def test_response_framing() -> None:
    r = parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Dtm-Session: {}", "GET")
    assert (r.status, r.content_length, r.chunked, r.keep_alive) == (200, 5, False, True)
    assert r.client_bytes(b"X-Dtm-Upstream: s1\r\n", True) == (
        b"HTTP/1.1 200 OK\r\nX-Dtm-Session: {}\r\nContent-Length: 5\r\nX-Dtm-Upstream: s1\r\n\r\n"
    )
    r = parse_response_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked", "GET")
    assert r.chunked and r.keep_alive
    assert b"Transfer-Encoding: chunked\r\n" in r.client_bytes(b"", True)
    assert b"Content-Length: 7\r\n" in r.client_bytes(b"", True, body_len=7)
    r = parse_response_head(b"HTTP/1.1 200 OK", "GET")
    assert r.content_length == -1 and not r.keep_alive
    r = parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 9", "HEAD")
    assert r.content_length == 0 and b"Content-Length: 9" in r.client_bytes(b"", True)
    assert parse_response_head(b"HTTP/1.1 204 No Content", "GET").content_length == 0
    assert not parse_response_head(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0", "GET"
    ).keep_alive
    with pytest.raises(UpstreamProtocolError):
        parse_response_head(b"HTTP/1.1 abc", "GET")


CHUNKED = b"5;ext=1\r\nhello\r\n0007\r\n, world\r\n0\r\nTrailer: x\r\n\r\n"


def test_chunked_scanner_at_every_split() -> None:
    for cut in range(len(CHUNKED) + 1):
        s = ChunkedScanner(keep_payload=True)
        used = s.feed(CHUNKED[:cut])
        assert used == cut
        assert s.feed(CHUNKED[cut:] + b"NEXT") == len(CHUNKED) - cut
        assert s.done and bytes(s.payload) == b"hello, world"


def test_chunked_scanner_errors() -> None:
    with pytest.raises(UpstreamProtocolError):
        ChunkedScanner().feed(b"zz\r\n")
    with pytest.raises(UpstreamProtocolError):
        ChunkedScanner().feed(b"2\r\nabX\r\n")
    with pytest.raises(ErrPayloadTooLarge):
        ChunkedScanner(keep_payload=True, limit=4, bad=ErrSyntaxInvalidArgs).feed(b"5\r\nhello")
