"""The handler with several balancers, against real socket servers playing them: a request never
sent goes to the next at once, a read that got no answer goes there too, a write that may have
arrived does not (ErrMaybeApplied); a balancer that failed is skipped for its back-off, then
tried again."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from dtm.core import backoff
from dtm.errors import ErrMaybeApplied, ErrUnavailable
from dtm.handler import upstream as upstream_module
from dtm.handler.metrics import HandlerMetrics
from dtm.handler.reads import SessionReads
from dtm.handler.session import Session
from dtm.handler.upstream import Upstream

ROW = b'{"key":"u.k","value":{"text":"t"},"deleted":false,"version":1,"hlc":2,"origin":"store1"}'
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"


class Fake:
    """A balancer that answers every request (kept alive), or, ``drop``, closes on reading one."""

    def __init__(self, drop: bool = False) -> None:
        self.drop = drop
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def start(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", port)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                self.requests.append(head.split(b"\r\n", 1)[0])
                if self.drop:
                    break
                writer.write(OK % (len(ROW), ROW))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


def refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(ports: list[int], clock: Clock | None = None, timeout_ms: int = 2000) -> Upstream:
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    return Upstream(urls, timeout_ms, 0, HandlerMetrics(", ".join(urls)), clock=clock or Clock())


async def _get(up: Upstream) -> bytes | None:
    raw, _ = await SessionReads(up, ["store1"], up.metrics).get_raw("u.k", Session())
    return raw


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 10))


def test_a_dead_balancer_is_skipped_by_reads_and_writes() -> None:
    async def test() -> None:
        good = Fake()
        up = make([refused_port(), await good.start()])
        await up.start()
        try:
            assert await _get(up) == ROW
            await up.put("u.k", b'{"text":"t"}', Session())  # never sent: on to the next
            for _ in range(4):
                assert await _get(up) == ROW
            assert len(good.requests) == 6
        finally:
            await up.close()
            await good.stop()

    run(test)


def test_a_read_without_an_answer_goes_on_but_a_write_may_have_been_applied() -> None:
    async def test() -> None:
        dropper, good = Fake(drop=True), Fake()
        clock = Clock()
        up = make([await dropper.start(), await good.start()], clock)
        await up.start()
        try:
            assert await _get(up) == ROW  # (the first request's turn starts at the second)
            clock.now += 100  # no back-off left from anything
            up._turn = -1  # the next request starts at the dropper
            assert await _get(up) == ROW
            assert dropper.requests == [b"GET /v1/kv/u.k HTTP/1.1"]
            clock.now += 100
            up._turn = -1
            with pytest.raises(ErrMaybeApplied, match="may have been applied"):
                await up.put("u.k", b'{"text":"t"}', Session())
            assert dropper.requests[-1] == b"PUT /v1/kv/u.k HTTP/1.1"
            assert b"PUT /v1/kv/u.k HTTP/1.1" not in good.requests  # never sent twice
        finally:
            await up.close()
            await dropper.stop()
            await good.stop()

    run(test)


def test_a_failed_balancer_is_tried_again_after_its_back_off() -> None:
    async def test() -> None:
        first, second = Fake(), Fake()
        clock = Clock()
        port = refused_port()
        up = make([port, await second.start()], clock)
        await up.start()
        try:
            assert await _get(up) == ROW
            assert await _get(up) == ROW  # one of the two starts at the dead one
            await first.start(port)  # it is back, but in back-off
            for _ in range(4):
                assert await _get(up) == ROW
            assert first.requests == []
            clock.now += backoff.BASE_S
            for _ in range(4):
                assert await _get(up) == ROW
            assert len(first.requests) == 2 and len(second.requests) == 8  # in turn again
        finally:
            await up.close()
            await first.stop()
            await second.stop()

    run(test)


def test_when_every_balancer_is_down_the_error_names_the_last_one_tried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(upstream_module, "RECONNECT_S", 0.3)  # goes round a few times, then fails

    async def test() -> None:
        a, b = refused_port(), refused_port()
        up = make([a, b])
        await up.start()
        try:
            for call in (_get(up), up.put("u.k", b"1", Session())):
                with pytest.raises(ErrUnavailable, match="the last one tried") as info:
                    await call
                assert not isinstance(info.value, ErrMaybeApplied)
        finally:
            await up.close()

    run(test)


def test_a_name_with_several_addresses_gives_each_but_the_last_the_short_connect_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dtm.pool import Pool, SendFailed

    async def test() -> None:
        good = Fake()
        port = await good.start()
        loop = asyncio.get_running_loop()
        waits: list[tuple[str, float]] = []
        real = Pool._connect_to

        async def resolve(host: str, port_: int, **_: Any) -> list[Any]:
            return [(0, 0, 0, "", (a, port_)) for a in ("192.0.2.1", "127.0.0.1")]

        async def connect_to(self: Pool, loop_: Any, address: str, wait: float) -> Any:
            waits.append((address, wait))
            if address == "192.0.2.1":  # cut off: it would hang for the whole wait
                raise SendFailed("connect timed out", sent=False, timeout=True)
            return await real(self, loop_, address, wait)

        monkeypatch.setattr(loop, "getaddrinfo", resolve)
        monkeypatch.setattr(Pool, "_connect_to", connect_to)
        pool = Pool(
            "balancer",
            port,
            size=2,
            connect_timeout_s=10.0,
            max_body=1 << 20,
            address_timeout_s=0.5,
        )
        try:
            answer = await pool.exchange(b"GET /v1/kv/u.k HTTP/1.1\r\nHost: b\r\n\r\n", "GET", 5)
            assert answer.status == 200
            assert waits == [("192.0.2.1", 0.5), ("127.0.0.1", 10.0)]
        finally:
            pool.close()
            await good.stop()

    run(test)
