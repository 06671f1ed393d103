"""Hypothesis over raw request bytes through a real balancer to a recording fake node.

Valid and mutated requests, pipelined on one connection and split at random points. Whatever
the bytes: the node never gets bytes its strict parser refuses; it gets exactly the requests a
reference reading of the whole stream accepts, in order (never one it refused, never one made
of another's body); unmutated requests all arrive as sent; every forwarded request is answered.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import httptools
import pytest
from fakenode import FakeNode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.harness import LocalCluster, read_until_closed

from dtm.auth import Credential
from dtm.balancer import gate
from dtm.balancer.http1 import RequestHead, request_head
from dtm.errors import DtmError

MAX_BODY = 4096


class Rig:
    def __init__(self, root: Path) -> None:
        self.c = LocalCluster(
            root,
            nodes=1,
            sections={"balancer": {"health_interval_ms": 200, "max_body_bytes": MAX_BODY}},
        )
        self.node = FakeNode(self.c.ports["store1"]).start()
        self.c.start("balancer")
        self.credential = Credential((self.c.secret,))

    def refused(self, head: RequestHead) -> bool:
        """Does the balancer refuse ``head`` (its gate, on a loopback listener)?"""
        return gate.refusal(head, self.credential, loopback=True) is not None


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    r = Rig(tmp_path_factory.mktemp("fuzz"))
    try:
        yield r
    finally:
        r.c.stop_all()
        r.node.stop()


class _Reference:
    """Reads a whole byte stream the way RFC 9112 and a server's rules (``refused``: its
    admission of a head, ``max_body``: its body limit) say."""

    def __init__(self, refused: Callable[[RequestHead], bool], max_body: int = MAX_BODY) -> None:
        self.refused = refused
        self.max_body = max_body
        self.accepted: list[tuple[str, bytes, bytes]] = []
        self.url = b""
        self.pairs: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.in_head = True
        self.parser = httptools.HttpRequestParser(self)
        self.current: tuple[str, bytes] | None = None

    def on_message_begin(self) -> None:
        self.url, self.pairs, self.body, self.in_head = b"", [], b"", True

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.in_head:
            self.pairs.append((name, value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        p = self.parser
        head = request_head(
            p.get_method(), self.url, p.get_http_version(), self.pairs, p.should_keep_alive()
        )
        if self.refused(head):
            raise ValueError("refused")
        if head.content_length > self.max_body:
            raise ValueError("too large")
        self.current = (head.method, head.target)

    def on_body(self, data: bytes) -> None:
        self.body += data
        if len(self.body) > self.max_body:
            raise ValueError("too large")

    def on_message_complete(self) -> None:
        assert self.current is not None
        self.accepted.append((*self.current, self.body))

    def read(self, data: bytes) -> list[tuple[str, bytes, bytes]]:
        with contextlib.suppress(httptools.HttpParserError, httptools.HttpParserUpgrade, DtmError):
            self.parser.feed_data(data)
        return self.accepted


def _request(auth: bytes, i: int, kind: str) -> tuple[bytes, tuple[str, bytes, bytes]]:
    key = f"/v1/kv/k{i}".encode()
    base = b"Host: localhost\r\nAuthorization: " + auth + b"\r\n"
    if kind == "get":
        return b"GET " + key + b" HTTP/1.1\r\n" + base + b"\r\n", ("GET", key, b"")
    body = b'{"value":%d}' % i
    head = b"PUT " + key + b" HTTP/1.1\r\n" + base + b"Content-Type: application/json\r\n"
    if kind == "put":
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body, ("PUT", key, body)
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    return head + b"Transfer-Encoding: chunked\r\n\r\n" + chunked, ("PUT", key, body)


NASTY = [b"\r", b"\n", b"\x00", b" ", b"\t", b":", b"0", b"x", b";", b",", b"\x0b", b"\xff"]
LINES = [
    b"Transfer-Encoding: chunked\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: 0\r\n",
    b"Host: localhost\r\n",
    b" folded\r\n",
    b"Transfer-Encoding: identity\r\n",
    b"\r\n",
]


@st.composite
def streams(draw: st.DrawFn, auth: bytes) -> tuple[bytes, list[tuple[str, bytes, bytes]], bool]:
    kinds = draw(st.lists(st.sampled_from(["get", "put", "chunked"]), min_size=1, max_size=4))
    parts = [_request(auth, i, k) for i, k in enumerate(kinds)]
    data = bytearray(b"".join(p[0] for p in parts))
    mutated = draw(st.booleans())
    if mutated:
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(data)))
            op = draw(st.sampled_from(["replace", "insert", "delete", "line"]))
            if op == "replace" and at < len(data):
                data[at : at + 1] = draw(st.sampled_from(NASTY))
            elif op == "insert":
                data[at:at] = draw(st.sampled_from(NASTY))
            elif op == "delete" and at < len(data):
                del data[at]
            else:
                line_end = data.find(b"\r\n", at)
                if line_end >= 0:
                    data[line_end + 2 : line_end + 2] = draw(st.sampled_from(LINES))
    return bytes(data), [p[1] for p in parts], mutated


def send_split(port: int, stream: bytes, cuts: list[int]) -> bytes:
    """Send ``stream`` to a loopback port in pieces cut at ``cuts``; all it answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        last = 0
        with contextlib.suppress(OSError):  # a refused stream may be closed mid-send
            for cut in [*cuts, len(stream)]:
                if cut > last:
                    s.sendall(stream[last:cut])
                    last = cut
            s.shutdown(socket.SHUT_WR)
        return read_until_closed(s)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_raw_bytes_never_desync_the_balancer(rig: Rig, data: st.DataObject) -> None:
    auth = rig.c.auth_header.encode()
    stream, sent, mutated = data.draw(streams(auth))
    cuts = sorted(data.draw(st.lists(st.integers(1, max(1, len(stream) - 1)), max_size=4)))
    expected = _Reference(rig.refused).read(stream)
    if not mutated:
        assert expected == sent  # the reference itself takes every valid request
    rig.node.seen.clear()
    reply = send_split(rig.c.ports["balancer"], stream, cuts)
    forwarded = [(r.method, r.target, r.body) for r in rig.node.requests()]
    assert rig.node.garbage == []
    assert forwarded == expected, (stream, reply[:500])
    assert reply.count(b"HTTP/1.1 200 ") >= len(expected)
