"""10,000 concurrent creates through two request handler processes: no ID collides, and every
created task is listed exactly once.

Two data nodes, the balancer and two handlers, no sync process: each node holds the tasks that
were written to it, and a list carrying a token that names one node is served by that node, so
the two lists together must hold every task once.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from tests.harness import LocalCluster

CREATES = 10_000
CONCURRENCY = 64


async def create_all(urls: list[str], auth: str) -> list[tuple[str, dict[str, object]]]:
    """Create CREATES tasks, spread over ``urls``, at most CONCURRENCY at a time."""
    results: list[tuple[str, dict[str, object]]] = []
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=30)
    headers = {"Authorization": auth}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as http:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(CREATES):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                url = urls[i % len(urls)]
                async with http.post(f"{url}/v1/tasks", json={"text": f"load {i}"}) as resp:
                    assert resp.status == 201, await resp.text()
                    task = await resp.json()
                    token = json.loads(resp.headers["X-Dtm-Session"])
                    results.append((task["id"], token))

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return results


async def list_with(url: str, token: dict[str, object], auth: str) -> list[str]:
    async with aiohttp.ClientSession() as http:
        headers = {"X-Dtm-Session": json.dumps(token), "Authorization": auth}
        async with http.get(f"{url}/v1/tasks", headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            body = await resp.json()
    return [item[0] for item in body["tasks"]]  # a TaskPage item is [id, text, ...]


@pytest.mark.timeout(180)
def test_ten_thousand_concurrent_creates_through_two_handlers(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    c = LocalCluster(Path(tmp_path_factory.mktemp("handler_load")), nodes=2)
    try:
        c.start_nodes()
        c.start("balancer")
        c.start("handler")
        c.start_another("handler", "handler2")
        urls = [c.url("handler"), c.url("handler2")]
        results = asyncio.run(create_all(urls, c.user_auth))
        ids = [i for i, _ in results]
        assert len(ids) == CREATES
        assert len(set(ids)) == CREATES, "two creates got the same ID"
        # Per node: the tasks written there, and a token naming only that node.
        written: dict[str, set[str]] = {}
        token_of: dict[str, dict[str, object]] = {}
        for task_id, token in results:
            versions = token["versions"]
            assert isinstance(versions, dict) and len(versions) == 1
            (node,) = versions
            written.setdefault(node, set()).add(task_id)
            token_of[node] = token
        assert set(written) == {"store1", "store2"}
        listed: list[str] = []
        for node, token in token_of.items():
            got = asyncio.run(list_with(urls[0], token, c.user_auth))
            assert set(got) == written[node], f"{node}'s list differs from what was written there"
            listed += got
        assert sorted(listed) == sorted(ids), "a task is missing or listed twice"
    finally:
        c.stop_all()
