"""The CLI with several handler URLs: how they are given and checked, one session for the list,
the handler that answered last, and the failover rule on real sockets (refused, silent, and a
server that answers)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtm.cli.client import TaskClient
from dtm.cli.settings import parse_config, resolve
from dtm.cli.state import SessionStore, list_key
from dtm.cli.transport import BaseUrl, parse_url, parse_urls
from dtm.errors import ErrMaybeApplied, ErrSyntaxInvalidArgs, ErrTimeout, ErrUnavailable
from dtm.wire import SessionToken, Task, encode

A = "http://127.0.0.1:7400"
B = "http://10.0.0.2:9000"
TASK = Task("abcdefghjkmn", "milk", "open", "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z")
TOKEN = SessionToken({"store1": 7}, {"store1": "e1e1e1e1e1e1e1e1"}, 70)

# ------------------------------------------------------------ settings


def test_several_urls_from_the_flag_the_environment_and_the_file() -> None:
    s = resolve(f"{A}, {B}", {}, None)
    assert [str(u) for u in s.urls] == [A, B] and s.source == "--url" and s.url == s.urls[0]
    s = resolve(None, {"TODO_URL": f"{B},{A}"}, None)
    assert [str(u) for u in s.urls] == [B, A] and s.source == "TODO_URL"
    as_text = parse_config(f'url = "{A},{B}"'.encode(), "cfg")
    as_list = parse_config(f'url = ["{A}", "{B}"]'.encode(), "cfg")
    both = parse_urls(f"{A},{B}")
    assert resolve(None, {}, as_text).urls == resolve(None, {}, as_list).urls == both
    assert resolve(None, {}, None).urls == (parse_url(A),)  # the default: one


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (f"{A},ftp://x", "ftp://x"),
        (f"{A},,{B}", "an empty URL"),
        (f"{A},", "an empty URL"),
        (f"{A},http://h:99999", "http://h:99999"),
        (f"{A},{A}", "listed twice"),
        ("http://a,b:1", "'b:1'"),
    ],
)
def test_each_url_of_a_list_is_checked(text: str, named: str) -> None:
    with pytest.raises(ErrSyntaxInvalidArgs) as info:
        resolve(None, {"TODO_URL": text}, None)
    assert named in info.value.message and "TODO_URL" in info.value.message


def test_a_bad_list_in_the_config_file_names_it() -> None:
    bad_lists = (b'url = ["http://a:1", 7]', b"url = []", b'url = ["http://a:1", "nope"]')
    for bad in (*bad_lists, b'url = ["http://a,b:1"]'):
        with pytest.raises(ErrSyntaxInvalidArgs) as info:
            resolve(None, {}, parse_config(bad, "cfg.toml"))
        assert "url" in info.value.message


def test_the_ca_file_applies_to_each_https_url() -> None:
    s = resolve("https://a:1,http://b:2", {"TODO_CA_FILE": "/ca.pem"}, None)
    assert [(u.tls, u.ca_file) for u in s.urls] == [(True, "/ca.pem"), (False, "")]


# ------------------------------------------------------------ state


def test_one_session_for_the_list_in_any_order_and_old_files_still_read(tmp_path: Path) -> None:
    d = tmp_path / "dtm"
    old = SessionStore(d, A, lambda m: None)  # a file of the single-URL CLI
    old.save(TOKEN)
    both = SessionStore(d, [A, B], lambda m: None)
    assert both.url == list_key([B, A]) == f"{B},{A}"  # sorted
    assert both.load() == TOKEN  # the token of A alone is carried into the list
    both.save(SessionToken({"store2": 3}, {"store2": "e2e2e2e2e2e2e2e2"}, 80))
    again = SessionStore(d, [B, A], lambda m: None)
    assert again.load().versions == {"store1": 7, "store2": 3}
    assert SessionStore(d, A, lambda m: None).load() == TOKEN  # one URL: just itself
    assert again.forget() and again.load() == SessionToken()
    assert SessionStore(d, A, lambda m: None).load() == SessionToken()


def test_the_handler_that_answered_last_is_kept(tmp_path: Path) -> None:
    d = tmp_path / "dtm"
    warnings: list[str] = []
    s = SessionStore(d, [A, B], warnings.append)
    assert s.last_handler() is None
    s.answered(B)
    assert SessionStore(d, [B, A], warnings.append).last_handler() == B
    (d / "handler.json").write_text("{not json")
    assert s.last_handler() is None and warnings == []  # unreadable: start at the first
    one = SessionStore(d, A, warnings.append)
    one.answered(A)  # one URL: nothing to remember
    assert one.last_handler() is None


# ------------------------------------------------------------ failover on real sockets


def refused_url() -> BaseUrl:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: refused
        return parse_url(f"http://127.0.0.1:{s.getsockname()[1]}")


class Server:
    """A loopback server that reads each request and answers it (or, ``silent``, never does)."""

    def __init__(self, answer: bytes, silent: bool = False) -> None:
        self.answer = answer
        self.silent = silent
        self.requests: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.05)
        self.url = parse_url(f"http://127.0.0.1:{self.sock.getsockname()[1]}")
        self.stop = threading.Event()
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(2)
            data = b""
            with contextlib.suppress(OSError):
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        while len(body) < int(line.split(b":")[1]):
                            body += conn.recv(65536)
            self.requests.append(data)
            if self.silent:
                self.held.append(conn)
                continue
            with contextlib.suppress(OSError):
                conn.sendall(self.answer)
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for c in self.held:
            c.close()
        self.sock.close()


def task_answer(status: int = 200) -> bytes:
    body = encode(TASK)
    head = f"HTTP/1.1 {status} OK\r\nContent-Length: {len(body)}\r\nX-Dtm-Session: "
    return head.encode() + encode(TOKEN) + b"\r\n\r\n" + body


@pytest.fixture
def good() -> Iterator[Server]:
    srv = Server(task_answer())
    yield srv
    srv.close()


@pytest.fixture
def silent() -> Iterator[Server]:
    srv = Server(b"", silent=True)
    yield srv
    srv.close()


def client(*urls: BaseUrl, timeout: float = 0.5, **kw: object) -> tuple[TaskClient, list[str]]:
    notes: list[str] = []
    c = TaskClient(urls, timeout=timeout, on_note=notes.append, **kw)  # type: ignore[arg-type]
    return c, notes


def test_a_refused_handler_is_skipped_for_any_request(good: Server) -> None:
    switched: list[BaseUrl] = []
    dead = refused_url()
    c, notes = client(dead, good.url, on_answered=switched.append)
    assert c.create("milk") == TASK  # a write never sent goes on at once
    assert switched == [good.url] and c.base == good.url
    assert c.token == TOKEN
    assert len(notes) == 1 and "connection refused" in notes[0] and str(good.url) in notes[0]
    c.get("abc")  # the next request starts where the last answer came from
    assert len(notes) == 1 and switched == [good.url] and len(good.requests) == 2


def test_a_read_sent_without_an_answer_goes_to_the_next(silent: Server, good: Server) -> None:
    c, notes = client(silent.url, good.url, timeout=0.3)
    assert c.get("abcdefghjkmn") == TASK
    assert len(silent.requests) == 1 and len(good.requests) == 1
    assert "did not answer within 0.3 s" in notes[0]


def test_a_write_sent_without_an_answer_is_maybe_applied(silent: Server, good: Server) -> None:
    c, _ = client(silent.url, good.url, timeout=0.3)
    with pytest.raises(ErrMaybeApplied) as info:
        c.create("milk")
    assert info.value.exit_code == 11 and "POST /v1/tasks was sent" in info.value.message
    with pytest.raises(ErrMaybeApplied):
        c.delete("abcdefghjkmn")
    assert good.requests == []  # never sent twice
    # Idempotent by construction: an update (absolute fields), a create with the client's ID.
    assert c.update("abcdefghjkmn", status="complete") == TASK
    c.base = silent.url
    assert c.create("milk", task_id="abcdefghjkmn") == TASK
    assert len(good.requests) == 2


def test_the_client_starts_at_the_last_handler(good: Server) -> None:
    dead = refused_url()
    c, notes = client(dead, good.url, start=good.url)
    assert c.base == good.url
    c.get("abc")
    assert notes == [] and len(good.requests) == 1


def test_when_no_handler_answers_the_error_names_each(silent: Server) -> None:
    dead = refused_url()
    c, _ = client(dead, silent.url, timeout=0.3)
    with pytest.raises(ErrTimeout) as info:  # the last one's kind
        c.get("abc")
    assert str(dead) in info.value.message and str(silent.url) in info.value.message
    c, _ = client(dead)
    with pytest.raises(ErrUnavailable) as one:
        c.get("abc")
    assert one.value.message.startswith("cannot reach") and one.value.exit_code == 6
