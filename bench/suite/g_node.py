"""Group 1, the data node: durable PUT and GET next to Redis and a raw SQLite loop, and the
change feed's cost for 10 new changes at a small and a large table.

Rule: the node, Redis and the SQLite loop run on the server core with the same number of
concurrent clients on the load core; the feed is timed with one keep-alive connection.
"""

from __future__ import annotations

import http.client
import shutil
import time
from pathlib import Path

from bench.suite import env, loadgen, refs
from bench.suite.model import Group, Results, Row, Run, percentile
from bench.suite.plan import Plan
from bench.suite.profile import profile_during
from bench.suite.servers import PUT_BODY, Servers, fill, node_status, request

from harness import AUTH_BY_PORT

PUT = "node: durable PUT"
GET = "node: GET"
RAW = "raw SQLite: 1 transaction per write"
R_SET = "Redis SET, no persistence"
R_GET = "Redis GET, no persistence"
R_AOF = "Redis SET, appendfsync always"


def feed_row(size: int) -> str:
    return f"node: changes, 10 new @ {size:,} rows"


def _feed_runs(url: str, reps: int, runs: int) -> list[Run]:
    """Write 10 rows, then time ``changes?since=`` just before them, ``reps`` times per run."""
    port = int(url.rsplit(":", 1)[1])
    out: list[Run] = []
    for _ in range(runs):
        since = int(node_status(url)["last_version"])
        for i in range(10):
            r = request("PUT", f"{url}/v1/kv/feed-{since}-{i}", PUT_BODY)
            if r.status != 200:
                raise RuntimeError(f"PUT answered {r}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        auth = {"Authorization": AUTH_BY_PORT[port]} if port in AUTH_BY_PORT else {}
        times: list[float] = []
        try:
            for _ in range(reps):
                t0 = time.perf_counter()
                conn.request("GET", f"/v1/changes?since={since}&limit=1000", headers=auth)
                resp = conn.getresponse()
                body = resp.read()
                times.append((time.perf_counter() - t0) * 1000)
                if resp.status != 200 or body.count(b'"key"') != 10:
                    raise RuntimeError(f"changes answered {resp.status}: {body[:300]!r}")
        finally:
            conn.close()
        out.append(Run(percentile(times, 50), percentile(times, 50), percentile(times, 99)))
    return out


def run(plan: Plan, res: Results, workdir: Path) -> None:
    g = Group(
        "node",
        "1. Data node: durable writes, reads and the change feed",
        method=(
            f"One `dtm node` (SQLite, WAL, synchronous=FULL, group commit) pinned to CPU "
            f"{env.SERVER_CPU}; {loadgen.driver()} -t1 -c{plan.node_conns} "
            f"-d{plan.seconds}s pinned to CPU {env.LOAD_CPU}, PUT of new keys (Lua script) "
            f"and GET of 1,000 existing keys, rounds interleaved. Redis 7 by redis-benchmark "
            f"-c{plan.node_conns} -n{plan.redis_requests:,} -d60 -r100000 on the same cores. "
            f"Raw SQLite: one INSERT per transaction for {plan.sqlite_seconds:g} s on the same "
            f"disk. Feed: `GET /v1/changes?since=V` with exactly 10 newer rows, {plan.feed_reps} "
            f"sequential requests per run on one keep-alive connection; the run's value is its "
            f"median."
        ),
    )
    res.groups.append(g)
    servers = Servers(workdir)
    try:
        c = servers.cluster("g1", nodes=1)
        c.start_nodes()
        servers.pin(c)
        url = c.url("store1")
        # The feed at the small table first, before the load runs add rows.
        fill(url, 0, plan.small_rows)
        small = g.add(Row(feed_row(plan.small_rows), "ms"))
        small.runs = _feed_runs(url, plan.feed_reps, plan.runs)
        fill(url, plan.small_rows, 1000, key=lambda i: f"k{i - plan.small_rows + 1}")

        put = g.add(Row(PUT, "req/s", refs=[R_AOF, RAW]))
        get = g.add(Row(GET, "req/s", refs=[R_GET]))
        put_t = loadgen.Target(url, "PUT", "/v1/kv/", PUT_BODY, keys="unique")
        get_t = loadgen.Target(url, "GET", "/v1/kv/k", keys="random", key_count=1000)
        loadgen.measure_interleaved(
            [(put, put_t), (get, get_t)],
            runs=plan.runs,
            seconds=plan.seconds,
            conns=plan.node_conns,
            workdir=workdir,
        )
        raw = g.add(Row(RAW, "writes/s", note="no network, one client"))
        for _ in range(plan.runs):
            raw.runs.append(refs.raw_sqlite(workdir, plan.sqlite_seconds))
        _redis(plan, g, servers)

        vs_aof = res.ratio_of(PUT, R_AOF)
        if plan.profile and ((put.median or 0) < 10_000 or (vs_aof is not None and vs_aof < 0.5)):
            res.profiles["node: durable PUT"] = profile_during(
                c.procs["store1"].pid,
                plan.seconds + 1,
                lambda: loadgen.run_once(put_t, plan.seconds + 1, plan.node_conns, workdir),
                workdir / "spy-node.txt",
            )

        have = int(node_status(url)["live_rows"])
        t0 = time.perf_counter()
        if have < plan.big_rows:
            fill(url, plan.small_rows + 1000 + 1, plan.big_rows - have)
        g.notes.append(
            f"Filled to {plan.big_rows:,} rows by replicated batches in "
            f"{time.perf_counter() - t0:.1f} s."
        )
        big = g.add(Row(feed_row(plan.big_rows), "ms", refs=[small.name]))
        big.runs = _feed_runs(url, plan.feed_reps, plan.runs)
        order = [PUT, R_AOF, RAW, GET, R_SET, R_GET, small.name, big.name]
        g.rows.sort(key=lambda r: order.index(r.name) if r.name in order else len(order))
    finally:
        servers.stop_all()
        shutil.rmtree(workdir / "g1", ignore_errors=True)


def _redis(plan: Plan, g: Group, servers: Servers) -> None:
    if not env.ensure_apt("redis-server", "redis-benchmark"):
        for name in (R_SET, R_GET, R_AOF):
            g.add(Row(name, "req/s", not_measured="redis-server is not installed"))
        return
    r_set = g.add(Row(R_SET, "req/s"))
    r_get = g.add(Row(R_GET, "req/s"))
    r_aof = g.add(Row(R_AOF, "req/s", note="durable like our PUT"))
    plain = servers.redis(durable=False)
    durable = servers.redis(durable=True)
    for i in range(plan.runs):
        found = refs.redis_benchmark(plain, "set,get", plan.node_conns, plan.redis_requests)
        r_set.runs.append(found["SET"])
        r_get.runs.append(found["GET"])
        aof = refs.redis_benchmark(durable, "set", plan.node_conns, plan.redis_requests // 4)
        r_aof.runs.append(aof["SET"])
        print(
            f"    redis run {i + 1}/{plan.runs}: SET {found['SET'].value:,.0f}/s, "
            f"GET {found['GET'].value:,.0f}/s, SET+fsync {aof['SET'].value:,.0f}/s",
            flush=True,
        )
