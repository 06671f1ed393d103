"""The fault harness's clients fail over between handlers by the CLI's rule (`dtm.core.failover`):
a request never sent, or a read, goes to the next handler; a write that may have left is
recorded unanswered, never sent twice."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from chaos.history import INFO, OK, Op
from chaos.workload import Client

pytestmark = pytest.mark.timeout(30)


class _Tasks(BaseHTTPRequestHandler):
    seen: list[str]

    def _answer(self, body: Any) -> None:
        self.seen.append(f"{self.command} {self.path}")
        raw = json.dumps(body).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        task = {"id": "t1", "text": "c0 w1", "status": "open"}
        self._answer(task | {"created": "2026-01-01T00:00:00.000Z"})

    def do_GET(self) -> None:
        self._answer({"tasks": [], "next": None})

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def live() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Tasks", (_Tasks,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def refusing() -> Iterator[str]:
    """A loopback port nothing listens on (connections are refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{s.getsockname()[1]}"
    finally:
        s.close()


@pytest.fixture
def silent() -> Iterator[str]:
    """A handler that takes the connection and the request but never answers (paused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    try:
        yield f"http://127.0.0.1:{s.getsockname()[1]}"
    finally:
        s.close()


def _client(urls: list[str], ops: list[Op]) -> Client:
    return Client(0, "u0", "tok", urls, 1, ops.append)


def test_a_refused_handler_is_passed_over_even_for_a_write(
    live: tuple[str, list[str]], refusing: str
) -> None:
    url, seen = live
    ops: list[Op] = []
    c = _client([refusing, url], ops)
    c._op("create", "POST", "/v1/tasks", None, {"text": "c0 w1", "status": "open"})
    assert ops[-1].type == OK and seen == ["POST /v1/tasks"]
    c._op("list", "GET", "/v1/tasks", None, None)
    assert ops[-1].type == OK and seen[-1] == "GET /v1/tasks"  # kept to the one that answered


def test_a_read_with_no_answer_goes_to_the_next_handler(
    live: tuple[str, list[str]], silent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("chaos.workload.TIMEOUT_S", 0.5)
    url, seen = live
    ops: list[Op] = []
    _client([silent, url], ops)._op("list", "GET", "/v1/tasks", None, None)
    assert ops[-1].type == OK and seen == ["GET /v1/tasks"]


def test_a_write_with_no_answer_is_unanswered_and_not_sent_again(
    live: tuple[str, list[str]], silent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("chaos.workload.TIMEOUT_S", 0.5)
    url, seen = live
    ops: list[Op] = []
    c = _client([silent, url], ops)
    c._op("create", "POST", "/v1/tasks", None, {"text": "c0 w1", "status": "open"})
    assert ops[-1].type == INFO and seen == []
    c._op("list", "GET", "/v1/tasks", None, None)  # the next request goes to the other one
    assert ops[-1].type == OK and seen == ["GET /v1/tasks"]
