"""Bounded aiohttp servers: slowloris, stalled bodies, parser refusals and the connection cap.

Real node, sync and handler processes with a short ``head_timeout_ms``. Slowloris connections
(a head dribbled byte by byte) each get ``408`` with a JSON body and are closed long before their
head would have been complete, while a normal client is served meanwhile; a body that stops
arriving is ``408``; a malformed request is a JSON ``400`` (one log line, no traceback); beyond
``max_connections`` a connection gets ``503`` JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from tests.harness import LocalCluster, raw_exchange, request, wait_until

HEAD_MS = 1000
SLOWLORIS = 50
STEP_S = 0.05
HEAD = (
    b"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 400 + b"\r\n\r\n"
)  # ~24 s at STEP_S per byte: far beyond the head timeout


@pytest.fixture
def slow(cluster: Callable[..., LocalCluster]) -> Iterator[LocalCluster]:
    c = cluster(
        nodes=2,
        node_options={
            "store1": {"head_timeout_ms": HEAD_MS},
            "store2": {"head_timeout_ms": HEAD_MS},
        },
        sections={"sync": {"head_timeout_ms": HEAD_MS}, "handler": {"head_timeout_ms": HEAD_MS}},
    )
    c.start_nodes()
    c.start("balancer")
    c.start("sync")
    c.start("handler")
    yield c


def _split(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, body


async def _dribble(port: int) -> tuple[bytes, int]:
    """Send HEAD one byte per STEP_S until the server closes; (what it answered, bytes sent)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = asyncio.ensure_future(reader.read())
    sent = 0
    try:
        for i in range(len(HEAD)):
            if answer.done():
                break
            try:
                writer.write(HEAD[i : i + 1])
                await writer.drain()
            except ConnectionError:
                break
            sent += 1
            await asyncio.sleep(STEP_S)
        return await asyncio.wait_for(answer, 30), sent
    finally:
        writer.close()


def _served_meanwhile(url: str, stop: threading.Event, served: list[int]) -> None:
    while not stop.is_set():
        served.append(request("GET", url, timeout=5).status)


def test_slowloris_is_closed_with_408_while_others_are_served(slow: LocalCluster) -> None:
    for comp in ("store1", "sync", "handler"):
        port = slow.ports[comp]
        stop = threading.Event()
        served: list[int] = []
        normal = threading.Thread(
            target=_served_meanwhile, args=(slow.url(comp) + "/v1/status", stop, served)
        )
        normal.start()

        async def attack(port: int = port) -> list[tuple[bytes, int]]:
            return await asyncio.gather(*(_dribble(port) for _ in range(SLOWLORIS)))

        try:
            results = asyncio.run(attack())
        finally:
            stop.set()
            normal.join(10)
        for data, sent in results:
            status, headers, body = _split(data)
            assert status == 408, (comp, data)
            assert headers["content-type"] == "application/json"
            assert headers["connection"] == "close"
            assert json.loads(body)["error"] == "ErrRequestTimeout", (comp, body)
            assert sent < len(HEAD) // 2, (comp, sent)  # closed long before the head was done
        assert served and set(served) == {200}, (comp, served[:5])


def test_a_stalled_body_is_408(slow: LocalCluster) -> None:
    head = (
        b"PUT /v1/kv/stall HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: " + slow.auth_header.encode() + b"\r\nContent-Length: 100\r\n\r\n"
    )
    status, headers, body = _split(raw_exchange(slow.ports["store1"], head + b'{"value": ', 10.0))
    assert status == 408 and json.loads(body)["error"] == "ErrRequestTimeout", body
    assert headers["connection"] == "close"
    assert request("GET", slow.url("store1") + "/v1/kv/stall").status == 404


MALFORMED = [
    b"GE\x00T / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"GET /\r\nforged log line\r\n HTTP/1.1\r\n\r\n",
]


def test_parser_refusals_are_json_and_one_log_line(slow: LocalCluster) -> None:
    for comp in ("store1", "sync", "handler"):
        for raw in MALFORMED * 3:
            status, headers, body = _split(raw_exchange(slow.ports[comp], raw, 10.0))
            assert status == 400, (comp, raw, body)
            assert headers["content-type"].startswith("application/json"), (comp, raw)
            assert json.loads(body)["error"] == "ErrSyntaxInvalidArgs", (comp, raw, body)
        log = slow.procs[comp].log_path.read_text(errors="replace")
        assert "Traceback" not in log, log[-2000:]
        assert not any(line.startswith("forged") for line in log.splitlines())


def test_the_connection_cap_holds(cluster: Callable[..., LocalCluster]) -> None:
    c = cluster(nodes=1, node_options={"store1": {"head_timeout_ms": 60000, "max_connections": 5}})
    c.start_nodes()  # alone: no balancer or sync holding connections to it
    port = c.ports["store1"]
    ping = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    held = []
    try:
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(ping)
            assert s.recv(65536).startswith(b"HTTP/1.1 200"), "a connection under the cap"
            held.append(s)
        # Sent nothing: the refusal comes at once (a client that did send may see a reset instead).
        status, _, body = _split(raw_exchange(port, b"", 10.0))
        assert status == 503 and json.loads(body)["error"] == "ErrUnavailable", body
        held.pop().close()
        wait_until(
            lambda: request("GET", c.url("store1") + "/healthz", timeout=2).status == 200,
            what="a connection slot to free up",
        )
    finally:
        for s in held:
            s.close()


def test_a_refused_connection_lingers_so_its_answer_is_not_destroyed_by_a_reset(
    slow: LocalCluster,
) -> None:
    """After its 408 the server shuts only its write side and keeps reading (dropping) for a
    while: a client still sending gets no reset, which could destroy the answer unread."""
    for comp in ("store1", "sync", "handler"):
        with socket.create_connection(("127.0.0.1", slow.ports[comp]), timeout=5) as s:
            s.sendall(HEAD[:10])
            got = b""
            while not got.endswith(b"}"):  # the 408 comes after the head timeout
                chunk = s.recv(65536)
                assert chunk, (comp, got)
                got += chunk
            assert got.startswith(b"HTTP/1.1 408"), (comp, got)
            assert s.recv(65536) == b"", comp  # the server's write side is shut
            for _ in range(10):  # a closed socket answers the first with a reset, and on
                s.sendall(b"a")  # loopback that reset is in before the next send
            s.settimeout(0.2)
            with contextlib.suppress(TimeoutError):  # nothing more to read, and no reset
                assert s.recv(1) == b""
