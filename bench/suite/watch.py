"""Seeing writes arrive: a long-poll on a node's own change feed marks when each key of ours
becomes visible there, so replication lag is measured from outside the sync process.

Rule: lag = the moment a node's feed shows the key − the moment the write was acknowledged on
the other node, both read from this process's monotonic clock; a key not seen by the deadline is
counted as missing, never as a number.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp
import msgspec
from bench.suite.servers import auth_headers

from dtm import wire


class FeedWatcher:
    """Long-polls ``url``'s feed and records when each key starting with ``prefix`` shows up."""

    def __init__(self, http: aiohttp.ClientSession, url: str, since: int, prefix: str) -> None:
        self.http = http
        self.url = url
        self.since = since
        self.prefix = prefix
        self.seen: dict[str, float] = {}
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._dec = msgspec.json.Decoder(wire.ChangesPage)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            q = f"{self.url}/v1/changes?since={self.since}&limit=5000&wait=1000"
            async with self.http.get(q) as r:
                body = await r.read()
            now = time.perf_counter()
            if r.status != 200:
                raise RuntimeError(f"{q} answered {r.status}: {body[:200]!r}")
            page = self._dec.decode(body)
            for row in page.rows:
                if row.key.startswith(self.prefix) and row.key not in self.seen:
                    self.seen[row.key] = now
            if page.rows:
                self.since = page.rows[-1].version
                self.changed.set()

    async def wait_for(self, keys: list[str], timeout: float) -> bool:
        """True once every key in ``keys`` was seen; False at the deadline."""
        deadline = time.perf_counter() + timeout
        while not all(k in self.seen for k in keys):
            left = deadline - time.perf_counter()
            if left <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 0.5))
        return True


async def last_version(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(f"{url}/v1/status") as r:
        st = msgspec.json.decode(await r.read(), type=wire.NodeStatus)
    return st.last_version


async def put(http: aiohttp.ClientSession, url: str, key: str, body: bytes) -> float:
    """A durable PUT; the moment it was acknowledged."""
    headers = {"Content-Type": "application/json"}
    async with http.put(f"{url}/v1/kv/{key}", data=body, headers=headers) as r:
        await r.read()
        if r.status != 200:
            raise RuntimeError(f"PUT {key} answered {r.status}")
    return time.perf_counter()


async def steady_lag(
    a: str, b: str, rate: int, seconds: float, prefix: str, body: bytes
) -> tuple[list[float], int]:
    """Write ``rate``/s to ``a`` for ``seconds``; the lag of each write until ``b`` shows it
    (ms), and how many never showed within 10 s of the last write."""
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=64), headers=auth_headers(a)
    ) as http:
        watcher = FeedWatcher(http, b, await last_version(http, b), prefix)
        watcher.start()
        acked: dict[str, float] = {}
        try:

            async def one(key: str) -> None:
                acked[key] = await put(http, a, key, body)

            tasks: list[asyncio.Task[None]] = []
            n = int(rate * seconds)
            t0 = time.perf_counter()
            for i in range(n):
                delay = t0 + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(f"{prefix}{i}")))
            await asyncio.gather(*tasks)
            await watcher.wait_for(list(acked), 10.0)
        finally:
            await watcher.stop()
    lags = [(watcher.seen[k] - t) * 1000 for k, t in acked.items() if k in watcher.seen]
    return lags, len(acked) - len(lags)


async def rounds(a: str, b: str, reps: int, prefix: str, body: bytes) -> list[float]:
    """``reps`` times: 10 concurrent writes to ``a``, then the ms from the last acknowledgement
    until ``b`` shows all ten (one sync round's cost for 10 new changes)."""
    out: list[float] = []
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=16), headers=auth_headers(a)
    ) as http:
        watcher = FeedWatcher(http, b, await last_version(http, b), prefix)
        watcher.start()
        try:
            for r in range(reps):
                keys = [f"{prefix}{r}-{i}" for i in range(10)]
                acks = await asyncio.gather(*(put(http, a, k, body) for k in keys))
                if not await watcher.wait_for(keys, 20.0):
                    raise RuntimeError("a sync round did not arrive within 20 s")
                out.append((max(watcher.seen[k] for k in keys) - max(acks)) * 1000)
                await asyncio.sleep(0.05)
        finally:
            await watcher.stop()
    return out
