"""When the handler may send a request to the balancer again, against a real socket server that
plays a balancer closing a kept-alive connection just as the next request reaches it.

A read that broke on a reused connection before any answer byte goes again, once, on a fresh
connection; a write never does: it is ErrMaybeApplied, and the server saw it exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest

from dtm.errors import ErrMaybeApplied, ErrTimeout, ErrUnavailable
from dtm.handler.metrics import HandlerMetrics
from dtm.handler.reads import SessionReads
from dtm.handler.session import Session
from dtm.handler.upstream import Upstream

ROW = b'{"key":"u.k","value":{"text":"t"},"deleted":false,"version":1,"hlc":2,"origin":"store1"}'
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"


class Balancer:
    """Answers the first request of each connection, then drops the connection as soon as the
    next request arrives on it (the balancer's idle close, racing the handler's write)."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []  # the request lines received, in order
        self.heads: list[bytes] = []  # the whole heads
        self.silent = False  # read requests but never answer

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                self.requests.append(head.split(b"\r\n", 1)[0])
                self.heads.append(head)
                if self.silent:
                    continue
                if answered:
                    break
                writer.write(OK % (len(ROW), ROW))
                await writer.drain()
                answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


@asynccontextmanager
async def upstream(timeout_ms: int = 2000) -> AsyncIterator[tuple[Upstream, Balancer]]:
    fake = Balancer()
    server = await asyncio.start_server(fake.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    up = Upstream(
        f"http://127.0.0.1:{port}",
        timeout_ms,
        0,
        HandlerMetrics("x"),
        max_offset_ms=300,
        wall_ms=lambda: 1_000_000,
    )
    await up.start()
    try:
        yield up, fake
    finally:
        await up.close()
        server.close()
        await server.wait_closed()


async def _get(up: Upstream) -> bytes | None:
    """A session read of ``u.k`` the way the handler makes it (`SessionReads` over ``up``)."""
    raw, _ = await SessionReads(up, ["store1"], up.metrics).get_raw("u.k", Session())
    return raw


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 10))


def test_a_read_on_a_stale_connection_goes_again_on_a_fresh_one() -> None:
    async def test() -> None:
        async with upstream() as (up, fake):
            assert await _get(up) == ROW
            assert await _get(up) == ROW  # the reused one broke: again
            assert fake.requests == [b"GET /v1/kv/u.k HTTP/1.1"] * 3

    run(test)


def test_a_write_on_a_stale_connection_is_never_sent_again() -> None:
    async def test() -> None:
        async with upstream() as (up, fake):
            assert await _get(up) == ROW
            with pytest.raises(ErrMaybeApplied, match="may have been applied"):
                await up.put("u.k", b'{"text":"t"}', Session())
            assert fake.requests == [b"GET /v1/kv/u.k HTTP/1.1", b"PUT /v1/kv/u.k HTTP/1.1"]

    run(test)


def test_a_write_that_gets_no_answer_in_time_may_have_been_applied() -> None:
    async def test() -> None:
        async with upstream(timeout_ms=200) as (up, fake):
            fake.silent = True
            with pytest.raises(ErrMaybeApplied, match="did not answer within 200 ms"):
                await up.put("u.k", b'{"text":"t"}', Session())
            with pytest.raises(ErrTimeout):
                await _get(up)

    run(test)


def test_nothing_listening_is_unavailable_for_reads_and_writes() -> None:
    async def test() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        up = Upstream(f"http://127.0.0.1:{port}", 500, 0, HandlerMetrics("x"))
        await up.start()
        try:
            for call in (_get(up), up.put("u.k", b"1", Session())):
                with pytest.raises(ErrUnavailable, match="cannot reach") as info:
                    await call
                assert not isinstance(info.value, ErrMaybeApplied)
        finally:
            await up.close()

    run(test)


def _deadline(head: bytes) -> int | None:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"x-dtm-deadline":
            return int(value)
    return None


def test_a_write_says_when_the_handler_stops_waiting_for_it() -> None:
    """No copy of a write may be stamped after the handler gives up on it (less the clocks'
    offset): the balancer's retries and the node's writer keep to that deadline."""

    async def go() -> None:
        async with upstream(timeout_ms=2000) as (up, fake):
            await up.put("u.k", b'{"text":"t"}', Session())
            await _get(up)
            assert _deadline(fake.heads[0]) == 1_000_000 + 2000 - 300
            assert _deadline(fake.heads[1]) is None  # a read has no deadline to keep

    run(go)
