"""`dtm.site`: the lean server of a data node and of the handler, over real loopback sockets:
exact answer bytes, routing (404, 405 with Allow, HEAD only where listed), the refusals made from
the head alone, streamed answers (chunked, HTTP/1.0, broken off, held back by a slow reader),
writes that outlive their client, and the drain."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import AsyncIterator, Callable

import pytest

from dtm import wire
from dtm.auth import Credential
from dtm.errors import ErrNotCaughtUp, ErrSyntaxInvalidArgs
from dtm.serve import Guard
from dtm.site import Answer, Limits, Request, Routes, Site, chunk, json_answer

SECRET = "s3cret-s3cret-s3cret-s3cret-s3cret"
LIMITS = Limits(head_timeout_ms=2000, max_connections=8, max_body_bytes=1024, idle_timeout_ms=5000)


class App:
    """A few routes whose behaviour each test can steer."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int, str]] = []  # (method, template, status, match)
        self.stream_fails = False
        self.pieces = 3
        self.yielded = 0
        self.piece = b"x"
        self.wrote = asyncio.Event()
        self.release = asyncio.Event()

    async def hello(self, request: Request) -> Answer:
        return json_answer(wire.Health("ok", "node", "n1", 5))

    async def echo(self, request: Request) -> Answer:
        body = {"match": request.match, "query": request.query(), "len": len(request.body)}
        return Answer(
            200, json.dumps(body).encode(), headers={"X-Seen": request.header("x-a") or ""}
        )

    async def fail(self, request: Request) -> Answer:
        raise ErrNotCaughtUp("not yet")

    async def bug(self, request: Request) -> Answer:
        raise RuntimeError("a bug")

    async def slow_write(self, request: Request) -> Answer:
        await self.release.wait()
        self.wrote.set()
        return Answer(200, b"{}")

    async def stream(self, request: Request) -> Answer:
        async def rest() -> AsyncIterator[bytes]:
            for _ in range(self.pieces):
                await asyncio.sleep(0)
                self.yielded += 1
                yield self.piece
            if self.stream_fails:
                raise ErrSyntaxInvalidArgs("the second page failed")
            yield b"]"

        return Answer(200, b"[", stream=rest())

    def after(self, request: Request, answer: Answer, template: str, elapsed: float) -> None:
        self.seen.append((request.method, template, answer.status, request.match))

    def routes(self) -> Routes:
        return Routes(
            exact={
                "/hello": {"GET": self.hello, "HEAD": self.hello},
                "/stream": {"GET": self.stream},
                "/fail": {"GET": self.fail},
                "/bug": {"GET": self.bug},
                "/write": {"POST": self.slow_write},
            },
            prefixed=(("/things/", "/things/{id}", {"GET": self.echo, "PUT": self.echo}),),
        )


@pytest.fixture
async def served() -> AsyncIterator[tuple[App, Site, int]]:
    app = App()
    site = Site("node", app.routes(), LIMITS, app.after)
    site.guard = Guard(Credential((SECRET,)), True, lambda path: path != "/hello")
    server = await asyncio.get_running_loop().create_server(site.conn, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    try:
        yield app, site, port
    finally:
        server.close()


AUTH = f"Authorization: Bearer {SECRET}\r\n"


async def exchange(port: int, data: bytes, until_close: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        if until_close:
            return await asyncio.wait_for(reader.read(-1), 5)
        return await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()


def get(path: str, extra: str = AUTH, version: str = "1.1") -> bytes:
    return (
        f"GET {path} HTTP/{version}\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n".encode()
    )


async def test_an_answer_is_exact_bytes(served: tuple[App, Site, int]) -> None:
    app, _, port = served
    body = b'{"status":"ok","component":"node","name":"n1","now_ms":5}'
    got = await exchange(port, get("/hello", ""))
    assert got == (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    )
    head = await exchange(port, get("/hello", "").replace(b"GET", b"HEAD"))
    assert head.endswith(b"\r\n\r\n") and b"Content-Length: %d" % len(body) in head
    assert app.seen == [("GET", "/hello", 200, ""), ("HEAD", "/hello", 200, "")]


async def test_keep_alive_serves_several_requests_on_one_connection(
    served: tuple[App, Site, int],
) -> None:
    _, _, port = served
    one = b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n"
    got = await exchange(port, one * 2 + get("/hello", ""))
    assert got.count(b"HTTP/1.1 200 OK") == 3 and got.count(b"Connection: close") == 1
    ten = await exchange(
        port,
        b"GET /hello HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n",
        until_close=False,
    )
    assert b"Connection: keep-alive\r\n" in ten
    probe = await exchange(port, b"GET /hello HTTP/1.0\r\n\r\n")  # as HAProxy's httpchk asks
    assert probe.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection: close" in probe


async def test_path_parameter_query_and_headers_are_decoded(served: tuple[App, Site, int]) -> None:
    _, _, port = served
    got = await exchange(port, get("/things/a%20b?x=1&y=&x=2", AUTH + "X-A: hi\r\n"))
    head, _, body = got.partition(b"\r\n\r\n")
    assert json.loads(body) == {
        "match": "a b",
        "query": [["x", "1"], ["y", ""], ["x", "2"]],
        "len": 0,
    }
    assert b"X-Seen: hi\r\n" in head


@pytest.mark.parametrize(
    ("request_bytes", "status", "allow"),
    [
        (get("/nowhere"), b"404", None),
        (get("/stream", AUTH).replace(b"GET", b"DELETE"), b"405", b"GET"),
        (get("/stream", AUTH).replace(b"GET", b"HEAD"), b"405", b"GET"),
        (get("/things/x").replace(b"GET", b"POST"), b"405", b"GET,PUT"),
    ],
)
async def test_unknown_paths_and_methods_are_json(
    served: tuple[App, Site, int], request_bytes: bytes, status: bytes, allow: bytes | None
) -> None:
    _, _, port = served
    head, _, body = (await exchange(port, request_bytes)).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 " + status)
    if not request_bytes.startswith(b"HEAD"):  # (a HEAD answer has no body)
        assert json.loads(body)["error"] in ("ErrNoDataFound", "ErrSyntaxInvalidArgs")
    if allow is not None:
        assert b"\r\nAllow: " + allow + b"\r\n" in head + b"\r\n"


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (get("/things/x", ""), b"401"),  # no credential
        (get("/things/x", "Authorization: Bearer wrong\r\n"), b"401"),
        (get("/things/x", AUTH + AUTH), b"401"),  # given twice
        (b"GET /hello HTTP/1.1\r\nHost: example.com\r\n\r\n", b"421"),
        (
            b"PUT /things/x HTTP/1.1\r\nHost: localhost\r\n"
            + AUTH.encode()
            + b"Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi",
            b"415",
        ),
        (
            b"PUT /things/x HTTP/1.1\r\nHost: localhost\r\n"
            + AUTH.encode()
            + b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n",
            b"413",
        ),
        (b"GET /hello HTTP/1.1\r\n\r\n", b"400"),  # no Host (HTTP/1.0 may omit it)
    ],
)
async def test_refusals_come_from_the_head_and_close(
    served: tuple[App, Site, int], request_bytes: bytes, status: bytes
) -> None:
    app, _, port = served
    head, _, body = (await exchange(port, request_bytes)).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 " + status) and b"Connection: close" in head
    assert "error" in json.loads(body)
    assert app.seen == []  # no route ran
    if status == b"401":
        assert b'WWW-Authenticate: Bearer realm="dtm"' in head


async def test_a_route_error_is_its_status_and_a_bug_is_500(
    served: tuple[App, Site, int], caplog: pytest.LogCaptureFixture
) -> None:
    app, _, port = served
    head, _, body = (await exchange(port, get("/fail"))).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 409") and json.loads(body)["error"] == "ErrNotCaughtUp"
    head, _, body = (await exchange(port, get("/bug"))).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500") and json.loads(body)["error"] == "ErrInternal"
    assert "a bug" in caplog.text
    assert [s[2] for s in app.seen] == [409, 500]


async def until(ready: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Until ``ready()`` holds, checked every 10 ms, failing after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not ready():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def until_still(read: Callable[[], int], polls: int = 10) -> None:
    """Until ``read()`` has not changed for ``polls`` readings 10 ms apart."""
    seen = [read()]

    def still() -> bool:
        seen.append(read())
        return len(seen) > polls and len(set(seen[-polls - 1 :])) == 1

    await until(still, "the reading to stop changing")


def unchunk(body: bytes) -> tuple[bytes, bool]:
    """The bytes of a chunked body, and whether its last chunk came."""
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return out, True
        out, body = out + rest[:size], rest[size + 2 :]
    return out, False


async def test_a_stream_is_chunked_and_ends(served: tuple[App, Site, int]) -> None:
    _, _, port = served
    head, _, body = (await exchange(port, get("/stream"))).partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head and b"Content-Length" not in head
    assert unchunk(body) == (b"[xxx]", True)
    assert body == chunk(b"[") + chunk(b"x") * 3 + chunk(b"]") + b"0\r\n\r\n"


async def test_a_stream_to_http10_is_raw_and_ends_with_the_connection(
    served: tuple[App, Site, int],
) -> None:
    _, _, port = served
    head, _, body = (await exchange(port, get("/stream", version="1.0"))).partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head and b"Content-Length" not in head
    assert body == b"[xxx]"


async def test_a_stream_that_fails_never_ends_its_body(served: tuple[App, Site, int]) -> None:
    app, _, port = served
    app.stream_fails = True
    keep = b"GET /stream HTTP/1.1\r\nHost: localhost\r\n" + AUTH.encode() + b"\r\n"
    got = await exchange(port, keep + keep)  # the second request is never answered
    body = got.partition(b"\r\n\r\n")[2]
    assert unchunk(body) == (b"[xxx", False) and got.count(b"HTTP/1.1") == 1


async def test_a_stream_waits_for_a_slow_reader(served: tuple[App, Site, int]) -> None:
    app, _, port = served
    app.pieces, app.piece = 256, b"y" * 65536  # 16 MiB, far beyond what the sockets buffer
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    try:
        writer.write(get("/stream"))
        await until_still(lambda: app.yielded)  # the producer stops: the socket is full
        assert 0 < app.yielded < 200  # the server waits for the reader instead of buffering
        got = await asyncio.wait_for(reader.read(-1), 10)
    finally:
        writer.close()
    body = got.partition(b"\r\n\r\n")[2]
    assert unchunk(body) == (b"[" + app.piece * 256 + b"]", True)


async def test_a_write_outlives_its_client_and_the_drain_waits_for_it(
    served: tuple[App, Site, int],
) -> None:
    app, site, port = served
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /write HTTP/1.1\r\nHost: localhost\r\n"
        + AUTH.encode()
        + b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    )
    await writer.drain()
    await until(lambda: site.in_flight == 1, "the write to be in flight")
    # the client leaves while its write waits: a reset, so the server sees the connection lost
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()
    await until(lambda: site.connections == 0, "the server to see the reset")
    assert site.in_flight == 1  # the write goes on, counted
    drained = asyncio.ensure_future(site.drain(5))
    for _ in range(20):  # every turn of the loop the drain could take, were the write not counted
        await asyncio.sleep(0)
    assert not drained.done()  # the drain waits for the write
    app.release.set()
    await asyncio.wait_for(drained, 5)
    assert app.wrote.is_set()
    head = (await exchange(port, get("/hello", ""))).partition(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 503")  # stopping: new requests are refused
