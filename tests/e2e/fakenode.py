"""A recording stand-in for a data node, for balancer tests: it parses what the balancer sends
with llhttp (strict), keeps every request but `/healthz`, and answers each with a small JSON.

``fenced`` makes its `/healthz` say so and its client writes answer 503 ErrClockSkew, as a
clock-fenced node does; a request's ``X-Dtm-Wait`` is slept before answering.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field

import httptools


@dataclass
class Seen:
    method: str
    target: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None


@dataclass
class FakeNode:
    port: int
    name: str = "store1"
    fenced: bool = False
    seen: list[Seen] = field(default_factory=list)
    garbage: list[str] = field(default_factory=list)  # what its parser refused
    _stop: bool = False

    def start(self) -> FakeNode:
        self._sock = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._sock.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop = True
        self._sock.close()

    def requests(self) -> list[Seen]:
        return list(self.seen)

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        conn_state = _Conn(self, conn)
        parser = httptools.HttpRequestParser(conn_state)
        conn_state.parser = parser
        with conn:
            while not self._stop:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                try:
                    parser.feed_data(data)
                except httptools.HttpParserError as exc:
                    self.garbage.append(f"{exc}: {data[:200]!r}")
                    return


class _Conn:
    def __init__(self, node: FakeNode, sock: socket.socket) -> None:
        self.node = node
        self.sock = sock
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.parser: httptools.HttpRequestParser | None = None
        self._method: str | None = None

    def on_message_begin(self) -> None:
        self.url, self.headers, self.body = b"", [], b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        self._method = self.parser.get_method().decode()

    def on_body(self, data: bytes) -> None:
        self.body += data

    def on_message_complete(self) -> None:
        node = self.node
        seen = Seen("", self.url, self.headers, self.body)
        if self.url == b"/healthz":
            health = {"status": "ok", "component": "node", "name": node.name}
            if node.fenced:
                health["fenced"] = True
            self._answer(200, json.dumps(health).encode())
            return
        seen.method = self._method or "?"
        node.seen.append(seen)
        wait = seen.header(b"x-dtm-wait")
        if wait is not None and wait.isdigit():
            time.sleep(int(wait) / 1000)
        if node.fenced and seen.method in ("PUT", "DELETE"):
            msg = {"error": "ErrClockSkew", "message": f"{node.name} is clock-fenced"}
            self._answer(503, json.dumps(msg).encode())
            return
        self._answer(200, json.dumps({"n": len(node.seen), "node": node.name}).encode())

    def _answer(self, status: int, body: bytes) -> None:
        head = (
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        with contextlib.suppress(OSError):
            self.sock.sendall(head + body)
