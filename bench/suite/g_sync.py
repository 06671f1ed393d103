"""Groups 5 and 6: replication lag under a steady write load (long-poll vs 500 ms interval sync),
one sync round's cost for 10 new changes at a small and a large table, and the catch-up rate of a
wiped node.

Rule: the sync process is started by the suite (`dtm sync`, then `dtm sync --interval 500`); when
it is not available the groups say "not measured" instead of failing. Nothing is pinned here:
lag and catch-up are measured on the machine as a cluster would run on it.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path

import uvloop
from bench.suite import refs, watch
from bench.suite.model import Group, Results, Row, Run, percentile
from bench.suite.plan import Plan
from bench.suite.profile import Recorder
from bench.suite.servers import PUT_BODY, LocalCluster, Servers, fill, node_status, request

LAG_LONGPOLL = "lag: long-poll sync"
LAG_INTERVAL = "lag: interval sync (500 ms)"
GO_LAG = "Go original: interval sync"
CATCHUP = "catch-up: wiped node refilled"
WAIT_MS = 1000  # the catch-up cluster's long-poll wait (default 5000): a restart is noticed sooner
NO_SYNC = "not measured: sync process not available"


def round_row(size: int) -> str:
    return f"sync round: 10 new changes @ {size:,} rows"


def sync_available() -> bool:
    return importlib.util.find_spec("dtm.sync.main") is not None


def _wait_rows(url: str, rows: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while int(node_status(url)["live_rows"]) < rows:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not reach {rows:,} rows within {timeout:.0f} s")
        time.sleep(0.1)


def _lag_row(name: str, refs_: list[str], plan: Plan, a: str, b: str, g: Group) -> Row:
    row = g.add(Row(name, "ms (p99)", refs=refs_))
    samples: list[float] = []
    for i in range(plan.runs):
        prefix = f"lag-{int(time.time() * 1000)}-{i}-"
        lags, missing = uvloop.run(
            watch.steady_lag(a, b, plan.lag_rate, plan.lag_seconds, prefix, PUT_BODY.encode())
        )
        samples += lags
        row.runs.append(Run(percentile(lags, 99), percentile(lags, 50), percentile(lags, 99)))
        row.runs[-1].errors = missing
        print(
            f"    {name:<40} run {i + 1}/{plan.runs}: p50 {percentile(lags, 50):.1f} ms, "
            f"p99 {percentile(lags, 99):.1f} ms, {len(lags)} writes"
            + (f", {missing} not seen" if missing else ""),
            flush=True,
        )
    g.series[name] = samples
    return row


def _round_row(name: str, refs_: list[str], plan: Plan, a: str, b: str, g: Group) -> Row:
    row = g.add(Row(name, "ms", refs=refs_))
    for i in range(plan.runs):
        prefix = f"round-{int(time.time() * 1000)}-{i}-"
        times = uvloop.run(watch.rounds(a, b, plan.round_reps, prefix, PUT_BODY.encode()))
        row.runs.append(Run(percentile(times, 50), percentile(times, 50), percentile(times, 99)))
    return row


def run_lag(plan: Plan, res: Results, workdir: Path) -> None:
    g = Group(
        "lag",
        "5. Replication lag under a steady write load",
        method=(
            f"Two `dtm node`s and `dtm sync`, {plan.small_rows:,} rows each. A writer sends "
            f"{plan.lag_rate} durable PUTs/s to store1 for {plan.lag_seconds:g} s per run; a "
            f"long-poll on store2's own change feed notes when each key shows up there. Lag = "
            f"visible on store2 − acknowledged by store1. Then the same with `dtm sync "
            f"--interval 500`. A sync round: 10 concurrent writes to store1, then the time from "
            f"the last acknowledgement until store2 shows all ten, {plan.round_reps} rounds per "
            f"run. Nothing pinned."
        ),
    )
    res.groups.append(g)
    if not sync_available():
        g.not_measured = NO_SYNC
        return
    servers = Servers(workdir)
    try:
        c = servers.cluster("g5", nodes=2)
        c.start_nodes()
        a, b = c.url("store1"), c.url("store2")
        c.start("sync")
        fill(a, 0, plan.small_rows)
        _wait_rows(b, plan.small_rows, 120)
        _quiet(c, 120)
        _lag_row(LAG_LONGPOLL, [LAG_INTERVAL, GO_LAG], plan, a, b, g)
        _round_row(round_row(plan.small_rows), [], plan, a, b, g)
        c.restart("sync", "--interval", "500")
        _lag_row(LAG_INTERVAL, [GO_LAG], plan, a, b, g)
        g.add(
            Row(
                GO_LAG,
                "ms (p99)",
                [Run(refs.GO_LAG_P99_MS, refs.GO_LAG_P50_MS, refs.GO_LAG_P99_MS)],
                note=refs.GO_NOTE,
                fixed=True,
            )
        )
    finally:
        servers.stop_all()
        shutil.rmtree(workdir / "g5", ignore_errors=True)


def _quiet(c: LocalCluster, timeout: float) -> float:
    """Wait until the sync process reports every pair caught up; the seconds it took."""
    t0 = time.perf_counter()

    def lagging() -> int:
        r = request("GET", c.url("sync") + "/v1/status")
        pairs = r.json()["pairs"] if r.status == 200 else []
        if not pairs:
            return -1
        return sum(int(p["lag_versions"]) for p in pairs)

    while lagging() != 0:
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"the sync process did not catch up within {timeout:.0f} s")
        time.sleep(0.2)
    return time.perf_counter() - t0


def _anti_entropy_during(log: Path, windows: list[tuple[float, float]]) -> list[str]:
    """The sync's anti-entropy log lines that fall in a catch-up run, with the run and the
    second of the run they were logged at (a pass is logged when it ends)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        if "anti-entropy" not in line:
            continue
        try:
            at = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        except ValueError:
            continue
        for i, (t0, t1) in enumerate(windows):
            if t0 <= at <= t1:
                what = line.split("dtm.sync: ", 1)[-1].strip()
                found.append(f"run {i + 1} (of {t1 - t0:.0f} s) at +{at - t0:.0f} s: {what}")
    if not found:
        return []
    return [
        "The sync's anti-entropy passes (every 30 s, over every row of both nodes) during the "
        "runs, logged when a pass ends (a wipe cuts a running pass short): "
        + "; ".join(found)
        + "."
    ]


def _wipe(c: LocalCluster) -> None:
    """Stop store2, delete its database, start it empty (a new epoch)."""
    c.procs["store2"].stop()
    db = c.db_path("store2")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    c.start("store2")


def _catch_up(
    c: LocalCluster,
    rows: int,
    timeout: float,
    start: Callable[[], object],
    spy: tuple[Path, Results, int] | None = None,
) -> tuple[float, float, list[float], list[float]]:
    """``start()`` (start the sync, or wipe store2 under it); wait until store2 holds ``rows``.
    Returns rows/s from the first copied row to the last, ms from the start to the first row,
    and the curve (seconds since the start, rows held). With ``spy`` (a folder, the results,
    seconds), py-spy samples the sync process and store2 meanwhile."""
    start()
    b = c.url("store2")
    recs: dict[str, Recorder] = {}
    if spy is not None:
        folder, _, secs = spy
        for name in ("sync", "store2"):
            recs[name] = Recorder(c.procs[name].pid, secs, folder / f"spy-catchup-{name}.txt")
    t0 = time.perf_counter()
    first: float | None = None
    ts: list[float] = [0.0]
    held: list[float] = [0.0]
    deadline = t0 + timeout
    while True:
        have = int(node_status(b)["live_rows"])
        now = time.perf_counter()
        ts.append(now - t0)
        held.append(float(have))
        if have and first is None:
            first = now
        if have >= rows:
            break
        if now > deadline:
            raise RuntimeError(f"store2 holds {have:,} of {rows:,} rows after {timeout:.0f} s")
        time.sleep(0.1)
    begin = first if first is not None and now > first else t0
    for name, rec in recs.items():
        assert spy is not None
        where = "the sync process" if name == "sync" else "the refilled node"
        spy[1].profiles[f"catch-up: {where}"] = rec.finish() + " (the last run, from the restart)"
    return rows / (now - begin), (begin - t0) * 1000, ts, held


def run_catchup(plan: Plan, res: Results, workdir: Path) -> None:
    """Group 6 and, on the same cluster with the large table on both nodes, group 7."""
    from bench.suite import g_memory

    g = Group(
        "catchup",
        "6. Catch-up of a wiped node",
        method=(
            f"Two `dtm node`s; store1 holds {plan.big_rows:,} rows. Run 1: store2 is empty when "
            f"`dtm sync` (long-poll) starts; every later run: store2 is stopped, its database "
            f"deleted, and started empty (a new epoch) under the running sync. Rate = rows / "
            f"time from the first copied row to the last (store2's `/v1/status` polled every "
            f"0.1 s). The sync's long-poll wait is {WAIT_MS} ms here (default 5,000), so a "
            f"restarted node is noticed sooner; it does not change the copy rate. Each run starts "
            f"once the sync reports every pair caught up; the sync's anti-entropy pass (every "
            f"30 s, over every row) may overlap a run, as it would in service. Then, once "
            f"the sync reports every pair caught up, {plan.round_reps} sync rounds of 10 new "
            f"changes per run at this size. Nothing pinned."
        ),
    )
    res.groups.append(g)
    if not sync_available():
        g.not_measured = NO_SYNC
        g_memory.not_measured(res, NO_SYNC)
        return
    servers = Servers(workdir)
    try:
        c = servers.cluster("g6", nodes=2, sections={"sync": {"wait_ms": WAIT_MS}})
        c.start_nodes()
        a, b = c.url("store1"), c.url("store2")
        t0 = time.perf_counter()
        fill(a, 0, plan.big_rows)
        g.notes.append(
            f"store1 filled to {plan.big_rows:,} rows in {time.perf_counter() - t0:.1f} s "
            f"(replicated batches from a made-up peer, before the sync started)."
        )
        row = g.add(Row(CATCHUP, "rows/s"))
        first = g.add(Row("catch-up: (re)start to the first copied row", "ms"))
        timeout = max(120.0, plan.big_rows / 2000)
        windows: list[tuple[float, float]] = []
        for i in range(plan.runs):
            spy = None
            if plan.profile and i == plan.runs - 1 and i > 0 and (row.median or 0) < 50_000:
                spy = (workdir, res, max(3, min(10, plan.big_rows // 30_000)))
            if i > 0:
                _quiet(c, timeout)  # each run starts from a settled cluster
            start: Callable[[], object] = partial(c.start, "sync") if i == 0 else partial(_wipe, c)
            wall0 = time.time()
            rate, first_ms, ts, held = _catch_up(c, plan.big_rows, timeout, start, spy)
            windows.append((wall0, time.time()))
            row.runs.append(Run(rate))
            first.runs.append(Run(first_ms))
            g.series[f"run {i + 1} seconds"] = ts
            g.series[f"run {i + 1} rows"] = held
            print(
                f"    catch-up run {i + 1}/{plan.runs}: {rate:,.0f} rows/s, first row after "
                f"{first_ms:.0f} ms",
                flush=True,
            )
        g.notes += _anti_entropy_during(c.procs["sync"].log_path, windows)
        took = _quiet(c, timeout)
        g.notes.append(
            f"After the last run the sync needed {took:.1f} s more until every pair was caught "
            f"up (it also copies store2's refilled feed back to store1, which ignores it)."
        )
        _round_row(round_row(plan.big_rows), [round_row(plan.small_rows)], plan, a, b, g)
        g_memory.measure(plan, res, c, servers, workdir)
    finally:
        servers.stop_all()
        shutil.rmtree(workdir / "g6", ignore_errors=True)
