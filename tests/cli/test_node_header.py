"""`todo --node NAME …` sends ``X-Dtm-Node: NAME`` on every request of the command (and only
then), against a real HTTP server on an ephemeral port."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtm.cli.main import main

TASK = (
    b'{"id":"abcd1234wxyz","text":"Buy","status":"complete",'
    b'"created":"2026-11-28T05:00:00.000Z","updated":"2026-11-28T05:00:00.000Z"}'
)


class Recorder:
    """Answers every request with one task and keeps each request's head."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.heads: list[str] = []
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.stopping:
                conn.close()
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.heads.append(data.split(b"\r\n\r\n")[0].decode())
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(TASK)}\r\n\r\n".encode()
                    + TASK
                )

    def close(self) -> None:
        self.stopping = True
        socket.create_connection(self.sock.getsockname(), timeout=5).close()  # wake accept()
        self.thread.join(10)
        self.sock.close()

    def node_headers(self) -> list[str | None]:
        out: list[str | None] = []
        for head in self.heads:
            found = [
                line.split(":", 1)[1].strip()
                for line in head.split("\r\n")
                if line.lower().startswith("x-dtm-node:")
            ]
            out.append(found[0] if found else None)
        return out


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    for name in ("HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(tmp_path))
    monkeypatch.delenv("TODO_URL", raising=False)
    monkeypatch.setenv("TODO_TOKEN", "dtmu_test")
    r = Recorder()
    try:
        yield r
    finally:
        r.close()


def test_every_request_of_the_command_names_the_node(server: Recorder) -> None:
    code = main(["--url", server.url, "--node", "store1", "update", "abcd", "efgh", "complete"])
    assert code == 0
    assert server.node_headers() == ["store1", "store1"]
    assert all(h.startswith("PATCH /v1/tasks/") for h in server.heads)


def test_the_option_may_follow_the_command_word(server: Recorder) -> None:
    assert main(["--url", server.url, "show", "abcd", "--node=store2"]) == 0
    assert server.node_headers() == ["store2"]


def test_without_the_option_no_node_is_named(server: Recorder) -> None:
    assert main(["--url", server.url, "done", "abcd"]) == 0
    assert server.node_headers() == [None]


def test_a_bad_node_name_sends_nothing(server: Recorder) -> None:
    assert main(["--url", server.url, "--node", "store 1", "done", "abcd"]) == 2
    assert server.heads == []
