"""A node that moves to another address is reached there as soon as its old connection fails:
the sync's client keeps no DNS cache (it once kept names for 300 s). The name is resolved by an
injected resolver (a name in /etc/hosts cannot be changed by a test), against real node
processes."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult

from dtm.errors import DtmError
from dtm.sync.client import NodeClient
from harness import LocalCluster, wait_until

# A loopback node answers only loopback Host names (no DNS rebinding), so the moving name is
# "localhost", resolved by the test's resolver instead of the system's.
NAME = "localhost"


class MovableName(AbstractResolver):
    """Resolves one name to wherever the test says the node is now."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.lookups = 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        assert host == NAME
        self.lookups += 1
        return [
            ResolveResult(
                hostname=host,
                host=self.address,
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        pass


def test_the_sync_client_keeps_no_dns_cache() -> None:
    async def main() -> Any:
        async with NodeClient({"store1": f"http://{NAME}:1"}) as client:
            assert client._session is not None
            return client._session.connector

    conn = asyncio.run(main())
    assert conn is not None and conn.use_dns_cache is False  # type: ignore[attr-defined]


def test_a_moved_node_is_reached_at_its_new_address(cluster: Callable[..., LocalCluster]) -> None:
    c = cluster(nodes=1)
    c.start_nodes()
    port = c.ports["store1"]
    resolver = MovableName("127.0.0.1")
    headers = {"Authorization": c.auth_header}

    async def main() -> None:
        async with NodeClient(
            {"store1": f"http://{NAME}:{port}"}, 2.0, headers, None, resolver
        ) as cl:
            first = await cl.changes("store1", 0, 10, 0)
            assert first.node == "store1"
            # The node moves: stopped here, started on another address; the name follows it.
            await asyncio.to_thread(c.procs["store1"].stop)
            c.node_hosts["store1"] = "127.0.0.2"
            c.write_config()
            # (not awaited healthy by the harness: a loopback node answers only loopback names,
            # and 127.0.0.2 is not one of them; the client below waits for it instead)
            c.start("store1", wait=False)
            resolver.address = "127.0.0.2"
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 15
            while True:
                try:
                    page = await cl.changes("store1", 0, 10, 0)
                    break
                except DtmError:
                    assert loop.time() < deadline, "the moved node was never reached"
                    await asyncio.sleep(0.05)
            assert page.node == "store1" and page.epoch == first.epoch
            assert resolver.lookups >= 2

    asyncio.run(main())
    wait_until(lambda: c.procs["store1"].alive(), 5, what="the moved node to run")
