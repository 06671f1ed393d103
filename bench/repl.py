"""Replication in both systems: the lag of a steady write load, the acknowledged writes lost under
concurrent creates, and (dtm) the catch-up of a wiped node.

Rule: lag = when the second node first shows a key − when the first node acknowledged it, both
on this process's monotonic clock; a write is lost when it was acknowledged and is missing from
a node once both nodes stopped changing; every run starts fresh stacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from pathlib import Path

import aiohttp
from bench import machine, profile
from bench.model import Group, Plan, Results, Row, Run, percentile
from bench.systems import Dtm, Original, harness, wait_quiet
from tests.tasks_fill import fill

Stack = Dtm | Original
LAG, LOST, CATCHUP = "replication lag", "acknowledged creates lost", "catch-up of a wiped node"


async def _lag_run(stack: Stack, rate: int, seconds: float, prefix: str) -> tuple[list[float], int]:
    """``rate`` writes/s to the first node for ``seconds``; each one's lag until the second node
    shows it (ms), and how many it never showed within 10 s."""
    seen: dict[str, float] = {}
    acked: dict[str, float] = {}

    async def watch() -> None:
        while True:
            keys = await stack.visible(http)
            now = time.perf_counter()
            for k in keys:
                seen.setdefault(k, now)

    async def write(key: str) -> None:
        await stack.put_direct(http, key)
        acked[key] = time.perf_counter()

    async with aiohttp.ClientSession() as http:
        watcher = asyncio.create_task(watch())
        t0 = time.perf_counter()
        writes = []
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
            writes.append(asyncio.create_task(write(f"{prefix}{i}")))
        await asyncio.gather(*writes)
        deadline = time.perf_counter() + 10
        while not acked.keys() <= seen.keys() and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    lags = [(seen[k] - t) * 1000 for k, t in acked.items() if k in seen]
    return lags, len(acked) - len(lags)


async def _creates(stack: Stack, n: int, conns: int, prefix: str) -> list[str]:
    """``n`` creates through the user's path, ``conns`` at a time; the acknowledged texts."""
    acked: list[str] = []
    gate = asyncio.Semaphore(conns)

    async def one(text: str) -> None:
        async with gate:
            if await stack.create(http, text):
                acked.append(text)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conns)) as http:
        await asyncio.gather(*(one(f"{prefix}{i}") for i in range(n)))
    return acked


def _settled(stack: Stack, nodes: list[str], timeout: float = 30) -> list[set[str]]:
    """Every node's texts, once two readings 1 s apart agree (or at the deadline)."""
    before = [stack.texts(n) for n in nodes]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(1)
        now = [stack.texts(n) for n in nodes]
        if now == before and all(t == now[0] for t in now):
            break
        before = now
    return before


def _one(system: type[Stack], i: int, plan: Plan, res: Results, g: Group, workdir: Path) -> None:
    """One run of one system on a fresh stack: the lag, then the lost-writes check."""
    stack = system(workdir / f"repl-{system.name}")
    rows = {r.name.split(": ", 1)[1]: r for r in g.rows if r.name.startswith(system.name + ":")}
    try:
        stack.start()
        prefix = f"lag-{i}-{time.monotonic_ns()}-"
        lags, unseen = asyncio.run(_lag_run(stack, plan.lag_rate, plan.lag_seconds, prefix))
        p50, p99 = percentile(lags, 50), percentile(lags, 99)
        rows[LAG].runs.append(Run(p99, p50, p99, unseen, len(lags)))
        g.series.setdefault(f"{system.name} lag ms", []).extend(lags)
        acked = asyncio.run(_creates(stack, plan.loss_writes, plan.conns, f"loss-{i}-"))
        held = _settled(stack, ["store1", "store2"])
        lost = sum(1 for t in acked if not all(t in h for h in held))
        rows[LOST].runs.append(Run(lost, errors=lost, requests=len(acked)))
        print(
            f"    {system.name:<9} lag p50 {p50:.1f}, p99 {p99:.1f} ms; lost {lost} of {len(acked)}"
        )
    finally:
        stack.stop()
        shutil.rmtree(workdir / f"repl-{system.name}", ignore_errors=True)


def run(plan: Plan, res: Results, workdir: Path, original_missing: str | None) -> None:
    g = Group("replication")
    res.groups.append(g)
    for s in (Dtm, Original):
        why = (original_missing or "") if s is Original else ""
        g.rows += [Row(f"{s.name}: {what}", "", not_measured=why) for what in (LAG, LOST)]
    systems: list[type[Stack]] = [Dtm] if original_missing else [Dtm, Original]
    for i in range(plan.runs):
        for system in systems[:: 1 - 2 * (i % 2)]:
            _one(system, i, plan, res, g, workdir)
    _catch_up(plan, res, g, workdir)


def _copied(stack: Dtm, rows: int, watch: dict[str, int], workdir: Path) -> tuple[float, str]:
    """Rows/s from store2's first copied row to its last (its status polled every 0.1 s), and
    py-spy's summary of the ``watch`` processes for 5 s from that first row."""
    t0, first, have, spies = time.perf_counter(), 0.0, 0, {}
    while have < rows:
        time.sleep(0.1)
        have = int(harness.request("GET", stack.c.url("store2") + "/v1/status").json()["live_rows"])
        if have and not first:
            first = time.perf_counter()
            spies = {n: profile.Recorder(pid, 5, workdir / n) for n, pid in watch.items()}
        if (now := time.perf_counter()) - t0 > max(120, rows / 2000):
            raise RuntimeError(f"store2 holds {have:,} of {rows:,} rows after {now - t0:.0f} s")
    found = "; ".join(f"**{n}**: {s.finish()}" for n, s in spies.items())
    return rows / (now - (first if now > first else t0)), found


def _catch_up(plan: Plan, res: Results, g: Group, workdir: Path) -> None:
    """store1 holds the rows; run 1: the sync starts with store2 empty; later runs wipe store2."""
    row = g.add(Row(f"dtm: {CATCHUP}", "rows/s"))
    stack = Dtm(workdir / "catchup")
    try:
        stack.c.start_nodes()
        fill(stack.c.url("store1"), plan.catchup_rows)
        for i in range(plan.runs):
            if i == 0:
                stack.c.start("sync")
            else:
                wait_quiet(stack.c.url("sync"), max(120, plan.catchup_rows / 2000))
                stack.c.procs["store2"].stop()  # wiped: its database deleted, a new epoch
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{stack.c.db_path('store2')}{suffix}").unlink(missing_ok=True)
                stack.c.start("store2")
            pids = stack.pids()
            for pid in pids.values():
                machine.pin(pid)
            spy = plan.profile and i == plan.runs - 1 and (row.stat() or 0) < 60_000
            watch = {n: pids[n] for n in ("sync", "store2")} if spy else {}
            rate, found = _copied(stack, plan.catchup_rows, watch, workdir)
            row.runs.append(Run(rate))
            print(f"    catch-up run {i + 1}/{plan.runs}: {rate:,.0f} rows/s", flush=True)
            res.profiles["catchup"] = found or res.profiles.get("catchup", "")
    finally:
        stack.stop()
        shutil.rmtree(workdir / "catchup", ignore_errors=True)
