"""`dtm.handler.push.Pusher` against a real data node app (over a memory store) and a raw socket
server: the exact request it sends, what the node does with it, and every way it gets no answer."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import msgspec
import pytest

from dtm import wire
from dtm.config import NodeConfig
from dtm.core import copyplan
from dtm.core.hlc import pack
from dtm.handler.push import Pusher
from dtm.node.app import NodeService
from dtm.node.routes import make_site
from dtm.storage.memory import MemoryStore

NOW = 1_790_000_000_000
EPOCH = "0123456789abcdef"
ROW = wire.Row("u.k", msgspec.Raw(b'{"text":"x"}'), False, 5, pack(NOW - 10, 2), "store1")


def refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def node() -> AsyncIterator[tuple[MemoryStore, int]]:
    """store2: a node app over a memory store whose clocks read NOW, on a free port."""
    store = MemoryStore("store2", "fedcba9876543210", lambda: NOW)
    cfg = NodeConfig(name="store2", port=0)
    svc = NodeService(store, cfg, lambda: NOW, wall_ms=lambda: NOW)
    site = make_site(svc)
    server = await asyncio.get_running_loop().create_server(site.conn, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    try:
        yield store, port
    finally:
        server.close()
        await svc.stop()


async def started(port: int, wall_ms: int = NOW) -> Pusher:
    pusher = Pusher({"store2": ("127.0.0.1", port)}, wall_ms=lambda: wall_ms)
    await pusher.start()
    return pusher


async def test_the_node_stores_the_copy_as_is_and_claims_nothing(
    node: tuple[MemoryStore, int],
) -> None:
    store, port = node
    pusher = await started(port)
    try:
        answer = await pusher.push("store2", copyplan.copy_of(ROW, EPOCH), 2.0)
        assert answer is not None and copyplan.holds(answer) and answer.applied == 1
        got = store.get("u.k")
        assert got is not None and (got.value, got.hlc, got.origin) == (
            ROW.value,
            ROW.hlc,
            "store1",
        )
        assert store.stats().applied == {"store1": wire.PeerApplied(EPOCH, 0)}
        again = await pusher.push("store2", copyplan.copy_of(ROW, EPOCH), 2.0)  # reused conn
        assert again is not None and copyplan.holds(again) and again.ignored == 1
        assert store.last_version() == 1
    finally:
        await pusher.close()


async def test_a_copy_too_far_ahead_of_the_nodes_clock_is_held_back(
    node: tuple[MemoryStore, int],
) -> None:
    store, port = node
    ahead = msgspec.structs.replace(ROW, hlc=pack(NOW + 60_000))
    pusher = await started(port)
    try:
        answer = await pusher.push("store2", copyplan.copy_of(ahead, EPOCH), 2.0)
        assert answer is not None and answer.held_from == 5 and not copyplan.holds(answer)
        assert store.get("u.k") is None
    finally:
        await pusher.close()


async def test_a_node_past_the_deadline_refuses_the_copy(node: tuple[MemoryStore, int]) -> None:
    store, port = node
    pusher = await started(port, wall_ms=NOW - 60_000)  # its deadline long gone at the node
    try:
        assert await pusher.push("store2", copyplan.copy_of(ROW, EPOCH), 2.0) is None
        assert store.get("u.k") is None
    finally:
        await pusher.close()


async def test_no_node_or_no_answer_is_none_within_the_timeout() -> None:
    pusher = Pusher({"store2": ("127.0.0.1", refused_port())})
    await pusher.start()
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = int(silent.sockets[0].getsockname()[1])
    hang = Pusher({"store3": ("127.0.0.1", port)})
    await hang.start()
    try:
        copy = copyplan.copy_of(ROW, EPOCH)
        assert await pusher.push("store2", copy, 1.0) is None  # refused
        assert await pusher.push("store9", copy, 1.0) is None  # not a node of the cluster
        loop = asyncio.get_running_loop()
        began = loop.time()
        assert await hang.push("store3", copy, 0.3) is None  # accepted, never answered
        assert 0.25 < loop.time() - began < 2
    finally:
        await pusher.close()
        await hang.close()
        silent.close()


async def test_the_request_is_the_copy_with_the_credential_and_a_deadline() -> None:
    got: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        got.append(head + await reader.readexactly(length))
        body = wire.encode(wire.ReplicateResponse(1, 0, 1))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    pusher = Pusher(
        {"store2": ("127.0.0.1", port)},
        auth_headers={"Authorization": "Bearer s3cret"},
        wall_ms=lambda: NOW,
    )
    await pusher.start()
    try:
        copy = copyplan.copy_of(ROW, EPOCH)
        assert await pusher.push("store2", copy, 1.5) == wire.ReplicateResponse(1, 0, 1)
    finally:
        await pusher.close()
        server.close()
    (sent,) = got
    head, body = sent.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v1/replicate HTTP/1.1"
    assert sorted(lines[1:]) == sorted(
        [
            f"Host: 127.0.0.1:{port}",
            "Authorization: Bearer s3cret",
            "Content-Type: application/json",
            f"X-Dtm-Deadline: {NOW + 1500}",
            f"Content-Length: {len(body)}",
        ]
    )
    assert body == (
        b'{"source":"store1","epoch":"0123456789abcdef","source_version":0,"rows":[{"key":"u.k",'
        b'"value":{"text":"x"},"deleted":false,"version":5,"hlc":'
        + str(ROW.hlc).encode()
        + b',"origin":"store1"}]}'
    )
