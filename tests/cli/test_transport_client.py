"""The HTTP exchange and the reading of answers: statuses, error bodies, session headers."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from dtm.cli.client import error_from_answer, read_answer, token_from_header
from dtm.cli.transport import Answer, exchange, parse_answer, parse_url
from dtm.errors import (
    ErrAmbiguousID,
    ErrInternal,
    ErrNoDataFound,
    ErrPayloadTooLarge,
    ErrSyntaxInvalidArgs,
    ErrTimeout,
    ErrUnavailable,
)
from dtm.wire import Deleted, SessionToken, Task


def test_an_answer_with_a_length() -> None:
    a = parse_answer(b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\nX-A: b\r\n\r\nbodyEXTRA")
    assert (a.status, a.headers["x-a"], a.body) == (201, "b", b"body")


def test_a_chunked_answer() -> None:
    data = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"
    )
    assert parse_answer(data).body == b"abcde"


def test_an_answer_read_to_the_end() -> None:
    assert parse_answer(b"HTTP/1.0 404 Not Found\r\n\r\nnope").body == b"nope"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_malformed_answers_are_unavailable(data: bytes) -> None:
    with pytest.raises(ErrUnavailable):
        parse_answer(data, "the request handler at http://h:1")


def answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, headers or {}, body)


def test_error_bodies_become_our_errors() -> None:
    e = error_from_answer(
        answer(404, b'{"error":"ErrNoDataFound","message":"no task with ID \'abc1\'"}')
    )
    assert isinstance(e, ErrNoDataFound) and e.message == "no task with ID 'abc1'"
    amb = error_from_answer(
        answer(409, b'{"error":"ErrAmbiguousID","message":"m","candidates":["abcd1","abcd2"]}')
    )
    assert isinstance(amb, ErrAmbiguousID) and amb.candidates == ("abcd1", "abcd2")
    assert e.candidates == ()
    big = error_from_answer(answer(413, b'{"error":"ErrPayloadTooLarge","message":"big"}'))
    assert isinstance(big, ErrPayloadTooLarge) and big.exit_code == 2


def test_answers_without_an_error_body_use_the_status() -> None:
    assert isinstance(error_from_answer(answer(502, b"Bad Gateway")), ErrUnavailable)
    assert isinstance(error_from_answer(answer(504, b"")), ErrTimeout)
    assert isinstance(error_from_answer(answer(400, b"<html>")), ErrSyntaxInvalidArgs)
    assert isinstance(error_from_answer(answer(500, b"oops")), ErrInternal)


def test_success_bodies_are_checked() -> None:
    gone = read_answer(answer(200, b'{"id":"abcd1234wxyz","deleted":true}'), Deleted)
    assert gone == Deleted("abcd1234wxyz", True)
    with pytest.raises(ErrInternal, match="unexpected answer"):
        read_answer(answer(200, b'{"id": 1}'), Task)
    with pytest.raises(ErrNoDataFound):
        read_answer(answer(404, b'{"error":"ErrNoDataFound","message":"x"}'), Task)


def test_session_headers() -> None:
    tok = token_from_header(
        '{"versions":{"store1":3},"epochs":{"store1":"e1e1e1e1e1e1e1e1"},"hlc":9}'
    )
    assert tok == SessionToken({"store1": 3}, {"store1": "e1e1e1e1e1e1e1e1"}, 9)
    assert token_from_header(None) is None
    assert token_from_header("{bad") is None


def test_a_refused_connection_is_one_line_naming_the_address() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: refused
        with pytest.raises(ErrUnavailable) as info:
            exchange(parse_url(f"http://127.0.0.1:{port}"), "GET", "/v1/tasks", timeout=2)
    assert info.value.message == (
        f"cannot reach the request handler at http://127.0.0.1:{port} (connection refused)"
    )
    assert info.value.exit_code == 6


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A server that accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    conns: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.05)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conns.append(srv.accept()[0])

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        t.join()
        for c in conns:
            c.close()
        srv.close()


def test_a_silent_server_costs_at_most_the_timeout(silent_server: int) -> None:
    with pytest.raises(ErrTimeout) as info:
        exchange(parse_url(f"http://127.0.0.1:{silent_server}"), "GET", "/", timeout=0.3)
    assert "did not answer within 0.3 s" in info.value.message
