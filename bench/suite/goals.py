"""The goals the numbers are held against (from the benchmark issue), judged met or missed.

Rule: a goal is met when its measured median (or ratio of medians) is on the right side of its
threshold; a goal whose figure was not measured is "not measured", never met; a "flat" cost
means the large table's figure is at most twice the small table's.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.suite import g_node, g_paths, g_sync
from bench.suite.model import Goal, Results

FLAT = 2.0  # "flat": the large-table figure at most this many times the small-table one

# What we believe would close each goal if it is missed (the page shows it only then).
PROPOSALS = {
    "put": "more writes per fsync (a longer group-commit window under load) and less Python per "
    "request on the node (fewer middlewares, no per-request metric labels); past that, one "
    "process per core with SO_REUSEPORT in front of one writer.",
    "put_redis": "Redis with `appendfsync always` pays one fsync per event-loop turn for all the "
    "clients served in it, and spends microseconds per request in C; our node must put as "
    "many writes into one commit (a longer group-commit window under load) and spend less "
    "Python per request (or run one process per core in front of one writer).",
    "balancer": "parse request and response heads in C (httptools/llhttp) instead of Python, "
    "keep per-request bookkeeping (metrics, status counters) off the forwarding path, and "
    "run one balancer process per core behind SO_REUSEPORT.",
    "path": "every hop of the full path shares one core here, so its rate is about one over "
    "the sum of the hops' CPU per request: the handler pays a whole aiohttp server and client "
    "round trip plus JSON per row; forwarding its upstream hop as bytes (like the balancer), "
    "decoding only the task fields it needs, and several handler processes would close most "
    "of the gap.",
    "lag": "long-poll the feed with a shorter batching delay and send each batch to its target "
    "as soon as it is read, without waiting for the other targets.",
    "catchup": "apply each replicated batch on the target in one statement per batch rather "
    "than row by row (the target's writer thread is most of its busy time), save the sync's "
    "state file less often while a backlog drains, and keep a few batches in flight per "
    "target.",
    "flat": "keep every per-round query on an index (version > cursor) so its cost does not "
    "depend on the table's size.",
    "cli": "import less at start-up (lazy imports of the HTTP client and rendering), or ship "
    "the one-shot path as a smaller entry point.",
    "go": "the same as for the full path above.",
}


# Where we believe the time goes, for a missed goal that was not profiled in the run.
BELIEFS = {
    "put": "in the node's Python per request (aiohttp parsing, validation, metrics) and in the "
    "commit's fsync",
    "put_redis": "in the node's Python per request, while Redis spends microseconds in C",
    "balancer": "in the Python that parses each head and does the per-request bookkeeping",
    "path": "in the handler's second HTTP hop and its JSON encode/decode per request",
    "go": "in the handler's second HTTP hop and its JSON encode/decode per request",
    "lag": "in the sync's wait between reading a feed page and sending its batch",
    "catchup": "in applying each replicated batch on the target node",
    "flat": "in a query that scans more rows as the table grows",
    "cli": "in importing modules at start-up",
}


def _fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "not measured"
    if unit == "x":
        return f"{v:.2f}×" if v >= 0.1 else f"{v:.3f}×"
    if unit == "ms":
        return f"{v:,.1f} ms"
    return f"{v:,.0f} {unit}"


def evaluate(res: Results) -> list[Goal]:
    """Every goal with its measured figure and a plain met / missed."""
    goals: list[Goal] = []

    def add(
        text: str, value: float | None, unit: str, ok: Callable[[float], bool], key: str, prof: str
    ) -> None:
        met = None if value is None else ok(value)
        where = ""
        if met is False:
            where = "; ".join(f"{k}: {v}" for k, v in res.profiles.items() if k.startswith(prof))
        if met is False and not where:
            where = f"unprofiled; we believe {BELIEFS[key]}"
        goals.append(
            Goal(text, value, _fmt(value, unit), met, where, PROPOSALS[key] if met is False else "")
        )

    put = res.find(g_node.PUT)
    add(
        "durable PUT per node ≥ 10,000/s",
        put.median if put else None,
        "req/s",
        lambda v: v >= 10_000,
        "put",
        "node: durable PUT",
    )
    add(
        "durable PUT ≥ 1/2 of Redis `appendfsync always`",
        res.ratio_of(g_node.PUT, g_node.R_AOF),
        "x",
        lambda v: v >= 0.5,
        "put_redis",
        "node: durable PUT",
    )
    for op in ("GET", "PUT"):
        add(
            f"our balancer ≥ 50 % of HAProxy ({op})",
            res.ratio_of(
                g_paths.bal_row(op, "through ours"), g_paths.bal_row(op, "through HAProxy")
            ),
            "x",
            lambda v: v >= 0.5,
            "balancer",
            f"balancer: {op}",
        )
    for op in ("GET", "PUT"):
        cpu = res.ratio_of(
            g_paths.cpu_row(op, "through HAProxy"), g_paths.cpu_row(op, "through ours")
        )
        add(
            f"our balancer ≥ 50 % of HAProxy ({op}, by the proxy's CPU per request: the rate "
            f"each would reach on a core of its own)",
            cpu,
            "x",
            lambda v: v >= 0.5,
            "balancer",
            f"balancer: {op}",
        )
    for op in ("create", "list"):
        add(
            f"full path ≥ 1/3 of direct-to-node ({op})",
            res.ratio_of(
                g_paths.path_row(op, "through the handler"),
                g_paths.path_row(op, "direct to a node"),
            ),
            "x",
            lambda v: v >= 1 / 3,
            "path",
            f"handler: {op}",
        )
    for op, go in (("create", g_paths.GO_CREATE), ("list", g_paths.GO_LIST)):
        add(
            f"full path beats the Go original ({op}, durable and lossless)",
            res.ratio_of(g_paths.path_row(op, "through the handler"), go),
            "x",
            lambda v: v > 1.0,
            "go",
            f"handler: {op}",
        )
    lag = res.find(g_sync.LAG_LONGPOLL)
    add(
        "replication lag p99 < 50 ms long-polling",
        lag.median if lag else None,
        "ms",
        lambda v: v < 50,
        "lag",
        "sync",
    )
    catch = res.find(g_sync.CATCHUP)
    add(
        "catch-up ≥ 50,000 rows/s",
        catch.median if catch else None,
        "rows/s",
        lambda v: v >= 50_000,
        "catchup",
        "catch-up:",
    )
    rounds = [
        r
        for g in res.groups
        for r in g.rows
        if r.name.startswith("sync round:") and r.refs and r.median is not None
    ]
    add(
        f"a sync round's cost flat from the small to the large table (≤ {FLAT:g}×)",
        res.ratio(rounds[0], rounds[0].refs[0]) if rounds else None,
        "x",
        lambda v: v <= FLAT,
        "flat",
        "sync",
    )
    feeds = [r for g in res.groups for r in g.rows if r.refs and r.name.startswith("node: changes")]
    add(
        f"`changes` for 10 new rows flat from the small to the large table (≤ {FLAT:g}×)",
        res.ratio(feeds[0], feeds[0].refs[0]) if feeds else None,
        "x",
        lambda v: v <= FLAT,
        "flat",
        "node: changes",
    )
    lst = next((r for g in res.groups for r in g.rows if r.name.startswith("CLI: todo list")), None)
    add(
        "`todo list` (1,000 tasks) < 100 ms",
        lst.median if lst else None,
        "ms",
        lambda v: v < 100,
        "cli",
        "todo list",
    )
    return goals
