"""A node that moves to another address is reached there as soon as its old connection fails:
the sync's client keeps no DNS cache (it once kept names for 300 s). The name is resolved by an
injected resolver (a name in /etc/hosts cannot be changed by a test), against real node
processes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.harness import LocalCluster, wait_until

from dtm.errors import DtmError
from dtm.sync.client import NodeClient

# A loopback node answers only loopback Host names (no DNS rebinding), so the moving name is
# "localhost", resolved by the test's resolver instead of the system's.
NAME = "localhost"


class MovableName:
    """Resolves one name to wherever the test says the node is now (the client's `Resolve`)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.lookups = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        assert host == NAME
        self.lookups += 1
        return [self.address]


def test_every_new_connection_resolves_the_name_again(cluster: Callable[..., LocalCluster]) -> None:
    c = cluster(nodes=1)
    c.start_nodes()
    resolver = MovableName("127.0.0.1")
    headers = {"Authorization": c.auth_header}
    url = f"http://{NAME}:{c.ports['store1']}"

    async def main() -> None:
        async with NodeClient({"store1": url}, 2.0, headers, None, resolver) as cl:
            await cl.changes("store1", 0, 10, 0)
            await cl.changes("store1", 0, 10, 0)  # the same kept-alive connection: no lookup
            assert resolver.lookups == 1
            # Two calls at once need a second connection, which looks the name up again.
            await asyncio.gather(*(cl.changes("store1", 0, 10, 200) for _ in range(2)))
            assert resolver.lookups == 2

    asyncio.run(main())


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
