"""The two systems the suite compares, each started fresh for every stage: dtm as `make up`
deploys it (two nodes, the balancer, the handler and the long-poll sync) and the Go original
from ../shared/peer (two in-memory stores, its balancer, its 500 ms polling sync).

Rule: both offer the same operations (create and list through the user's path, a direct write
to the first node, what the second node shows); every server runs on the server core and is
stopped by its PID in a ``finally``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path
from typing import Literal

import aiohttp
import msgspec
from bench import machine
from bench.load import Target
from tests import harness
from tests.tasks_fill import TASK_VALUE, fill

CREATE_BODY = '{"text":"benchmark task"}'
PUT_BODY = b'{"value":' + TASK_VALUE + b"}"


PLACES = [machine.ROOT.parent / "shared/peer", machine.ROOT.parents[1] / "shared/peer"]
PEER = next((p for p in PLACES if (p / "bin/store").exists()), PLACES[0])


def wait_quiet(sync_url: str, timeout: float = 120) -> None:
    """Until the sync process reports every pair caught up."""

    def quiet() -> bool:
        r = harness.request("GET", sync_url + "/v1/status")
        pairs = r.json()["pairs"] if r.status == 200 else []
        return bool(pairs) and sum(int(p["lag_versions"]) for p in pairs) == 0

    harness.wait_until(quiet, timeout, 0.1, "the sync to catch up")


Pages = Literal["watched", "asked", "none"]
_HANDLER: dict[Pages, dict[str, dict[str, object]]] = {
    "watched": {},
    "asked": {"handler": {"page_watch": False}},
    "none": {"handler": {"page_cache_mib": 0}},
}


class Dtm:
    name = "dtm"

    def __init__(self, folder: Path, pages: Pages = "watched") -> None:
        """``pages``: what the handler does with node pages: "watched" as deployed (an unchanged
        list asks no node), "asked" (each list asks a node, which answers 304 to the copy's tag:
        ``page_watch = false``), "none" (it keeps none, so every list is built anew, as a list
        after any write is: ``page_cache_mib = 0``)."""
        self.c = harness.LocalCluster(folder, nodes=2, sections=_HANDLER[pages])
        self._since = 0

    def start(self, tasks: int = 0) -> None:
        """Both nodes holding the same ``tasks`` tasks, the balancer, the handler, the sync."""
        self.c.start_nodes()
        for url in self.c.node_urls:
            fill(url, tasks)
        for s in ("balancer", "handler", "sync"):
            self.c.start(s)
        wait_quiet(self.c.url("sync"))
        for pid in self.pids().values():
            machine.pin(pid)

    def pids(self) -> dict[str, int]:
        return {n: p.pid for n, p in self.c.procs.items() if p.alive()}

    def target(self, op: str) -> Target:
        body, auth = CREATE_BODY if op == "create" else None, {"Authorization": self.c.user_auth}
        return Target(self.c.url("handler"), "POST" if body else "GET", "/v1/tasks", body, auth)

    @staticmethod
    def listed(body: bytes) -> int:
        """The tasks in a list answer (a page: ``{"tasks": [[id, text, ...], ...], "next"}``)."""
        return len(msgspec.json.decode(body)["tasks"])

    async def create(self, http: aiohttp.ClientSession, text: str) -> bool:
        async with http.post(self.c.url("handler") + "/v1/tasks", json={"text": text}) as r:
            return r.status == 201

    async def put_direct(self, http: aiohttp.ClientSession, key: str) -> None:
        async with http.put(f"{self.c.url('store1')}/v1/kv/{key}", data=PUT_BODY) as r:
            if r.status != 200:
                raise RuntimeError(f"PUT {key} answered {r.status}")

    async def visible(self, http: aiohttp.ClientSession) -> list[str]:
        """The keys store2 gained since the last call (a long-poll on its change feed)."""
        q = f"{self.c.url('store2')}/v1/changes?since={self._since}&limit=5000&wait=1000"
        async with http.get(q) as r:
            rows = json.loads(await r.read())["rows"]
        self._since = rows[-1]["version"] if rows else self._since
        return [row["key"] for row in rows]

    def texts(self, node: str) -> set[str]:
        """The texts of every task ``node`` holds."""
        found, after = set[str](), ""
        while after is not None:
            q = f"{self.c.url(node)}/v1/kv?limit=1000" + (f"&after={after}" if after else "")
            page = harness.request("GET", q, timeout=60).json()
            found.update(r["value"]["text"] for r in page["rows"] if isinstance(r["value"], dict))
            after = page["next"]
        return found

    def stop(self) -> None:
        self.c.stop_all()


class Original:
    name = "original"
    NODES = ("store1", "store2")

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        ports = {harness.free_port() for _ in range(20)}  # three distinct ones among them
        self.ports = dict(zip((*self.NODES, "balancer"), sorted(ports), strict=False))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def _run(self, name: str, binary: str, **env: str) -> None:
        argv = [str(PEER / "bin" / binary)]
        self.procs[name] = machine.spawn(
            argv, self.folder / f"{name}.log", PATH=os.environ["PATH"], **env
        )

    def _call(self, name: str, task: str, conn: HTTPConnection | None = None) -> bytes:
        conn = conn or HTTPConnection("127.0.0.1", self.ports[name], timeout=30)
        conn.request("POST", "/", json.dumps({"task": task}), {"Content-Type": "application/json"})
        r = conn.getresponse()
        if r.status != 200:
            raise RuntimeError(f"the original's {name} answered {r.status}: {r.read()[:200]!r}")
        return r.read()

    def _up(self, name: str) -> None:
        harness.wait_until(lambda: self._call(name, "list"), 10, 0.02, f"the original's {name}")

    def _fill(self, node: str, tasks: int) -> None:
        conn = HTTPConnection("127.0.0.1", self.ports[node], timeout=30)
        for i in range(tasks):
            self._call(node, f"create task-{i}", conn)

    def start(self, tasks: int = 0) -> None:
        """Stores holding the same ``tasks`` tasks (the same IDs), its balancer, its sync."""
        for n in self.NODES:
            self._run(n, "store", PORT=str(self.ports[n]))
        for n in self.NODES:
            self._up(n)
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(self._fill, self.NODES, (tasks, tasks)))
        stores = ",".join(f"127.0.0.1:{self.ports[n]}" for n in self.NODES)
        self._run("balancer", "loadbrancer", PORT=str(self.ports["balancer"]), EXPORTS=stores)
        self._up("balancer")
        self._run("sync", "sync", STORES=stores, POLLING_MS="500")
        log = self.folder / "store1.log"  # polled by the sync once it runs
        harness.wait_until(lambda: b"DifferencesHandler" in log.read_bytes(), 10, 0.02, "sync")
        if len(self.pids()) != 4:
            raise RuntimeError(f"the original's processes exited: {self.procs}")

    def pids(self) -> dict[str, int]:
        return {n: p.pid for n, p in self.procs.items() if p.poll() is None}

    def target(self, op: str) -> Target:
        task = "create benchmark-task" if op == "create" else "list"
        return Target(self.url("balancer"), "POST", "/", json.dumps({"task": task}))

    @staticmethod
    def listed(body: bytes) -> int:
        return len(re.findall(rb"(?m)^\d+: ", body))

    async def _post(self, http: aiohttp.ClientSession, name: str, task: str) -> bytes:
        async with http.post(self.url(name) + "/", json={"task": task}) as r:
            return await r.read() if r.status == 200 else b""

    async def create(self, http: aiohttp.ClientSession, text: str) -> bool:
        return (await self._post(http, "balancer", f"create {text}")).startswith(b"Created")

    async def put_direct(self, http: aiohttp.ClientSession, key: str) -> None:
        if not (await self._post(http, "store1", f"create {key}")).startswith(b"Created"):
            raise RuntimeError(f"the original's store1 refused to create {key}")

    async def visible(self, http: aiohttp.ClientSession) -> list[str]:
        """Every text store2 lists now (polled every 5 ms: it has no change feed)."""
        await asyncio.sleep(0.005)
        return re.findall(r"(?m)^\d+: (.*)$", (await self._post(http, "store2", "list")).decode())

    def texts(self, node: str) -> set[str]:
        return set(re.findall(r"(?m)^\d+: (.*)$", self._call(node, "list").decode()))

    def stop(self) -> None:
        machine.stop(self.procs.values())


def original_missing(private: str | None) -> str | None:
    """Why the Go original cannot run here (None: it can)."""
    if private is not None:
        return f"not measured: the original needs a private network namespace ({private})"
    found = (PEER / "bin" / "store").exists()
    return None if found else f"not measured: the original's binaries are not in {PEER}/bin"
