"""Hostile text written straight to a node (bypassing the handler's text check) and hostile
error messages from a server never reach the terminal raw through `todo`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.harness import LocalCluster, request, running

HOSTILE = "\x1b[2J\x1b]0;pwned\x07\u202egnp.exe\u2066\x9b31m"
RAW = ("\x1b", "\x07", "\u202e", "\u2066", "\x9b")


def todo(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "dtm.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=30,
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def one(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with running(Path(tmp_path_factory.mktemp("cli_safe")), nodes=1) as c:
        yield c


@pytest.fixture
def env(one: LocalCluster, tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR",)}
    e.update(
        HOME=str(tmp_path),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        TODO_URL=one.url("handler"),
        TODO_TOKEN=one.user_token,
        PYTHONIOENCODING="utf-8",
    )
    return e


def assert_clean(*texts: str) -> None:
    for text in texts:
        for c in RAW:
            assert c not in text, repr(text)


def test_hostile_task_text_is_shown_escaped(one: LocalCluster, env: dict[str, str]) -> None:
    task_id = "h0st11e00000"
    t = "2026-01-01T00:00:00.000Z"
    value = json.dumps({"text": HOSTILE, "status": "open", "created": t, "updated": t})
    body = b'{"value":' + value.encode() + b"}"
    resp = request("PUT", f"{one.url('store1')}/v1/kv/tester.{task_id}", body)
    assert resp.status == 200, resp
    code, out, err = todo(env, "list")
    assert code == 0 and "\\x1b[2J" in out and "\\u202e" in out
    assert_clean(out, err)
    for status in ("complete", "open"):  # `Completed <id>  <text>`: the show-like outputs
        code, out, err = todo(env, "update", task_id, status)
        assert code == 0 and "\\x1b" in out
        assert_clean(out, err)
    code, out, err = todo(env, stdin=f"list\nupdate {task_id[:6]} complete\nrm {task_id}\n")
    assert code == 0 and "\\x1b" in out
    assert_clean(out, err)
    # --json stays exact.
    assert request("PUT", f"{one.url('store1')}/v1/kv/tester.{task_id}", body).status == 200
    code, out, _ = todo(env, "--json", "list")
    assert code == 0 and json.loads(out)["open"][0]["text"] == HOSTILE


def test_hostile_error_messages_are_shown_escaped(env: dict[str, str]) -> None:
    """A server (or anything at the URL) that answers with control characters in its error."""
    body = json.dumps({"error": "ErrNoDataFound", "message": HOSTILE}).encode()
    answer = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
    answer += b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{port}"
        code, out, err = todo({**env, "TODO_URL": url}, "delete", "abcd")
        assert code == 3 and err.startswith("ErrNoDataFound: ") and "\\x1b" in err
        assert_clean(out, err)
        code, out, err = todo({**env, "TODO_URL": url}, stdin="rm abcd\nlist\n")
        assert code == 3 and "\\u202e" in err
        assert_clean(out, err)
    finally:
        srv.close()
