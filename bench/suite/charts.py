"""The charts of the page, as PNG files: throughput per path with its references, the
replication-lag distribution, and the catch-up curve.

Rule: a chart is drawn only from rows and series of the same `Results` the tables show; without
matplotlib the page simply has no charts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.suite import g_node, g_paths, g_sync
from bench.suite.model import Results, Row

PANELS: list[tuple[str, list[str]]] = [
    (
        "data node vs Redis and raw SQLite",
        [g_node.PUT, g_node.R_AOF, g_node.RAW, g_node.GET, g_node.R_SET, g_node.R_GET],
    ),
    (
        "balancer: ours vs HAProxy vs direct",
        [
            g_paths.bal_row(op, p)
            for op in ("GET", "PUT")
            for p in ("through ours", "through HAProxy", "direct to a node")
        ],
    ),
    (
        "full path: list",
        [
            g_paths.path_row("list", p)
            for p in ("through the handler", "through the balancer", "direct to a node")
        ]
        + [g_paths.GO_LIST],
    ),
    (
        "full path: create",
        [
            g_paths.path_row("create", p)
            for p in ("through the handler", "through the balancer", "direct to a node")
        ]
        + [g_paths.GO_CREATE],
    ),
]


def _color(row: Row) -> str:
    name = row.name
    if row.fixed:
        return "#bbbbbb"
    if name.startswith(("Redis", "raw SQLite")) or "HAProxy" in name:
        return "#e07b39"
    if "direct" in name:
        return "#6c8ebf"
    return "#2e7d32"


def throughput(res: Results, path: Path, plt: Any) -> bool:
    panels = []
    for title, names in PANELS:
        rows = [r for n in names if (r := res.find(n)) is not None and r.median is not None]
        if rows:
            panels.append((title, rows))
    if not panels:
        return False
    height = sum(0.8 + 0.32 * len(rows) for _, rows in panels) + 0.6
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, height), squeeze=False)
    for ax, (title, rows) in zip(axes[:, 0], panels, strict=True):
        labels = [r.name + (" (another run)" if r.fixed else "") for r in rows]
        vals = [r.median or 0 for r in rows]
        lo = [max(0.0, (r.median or 0) - (r.lo or 0)) for r in rows]
        hi = [max(0.0, (r.hi or 0) - (r.median or 0)) for r in rows]
        y = list(range(len(rows)))[::-1]
        ax.barh(y, vals, xerr=[lo, hi], color=[_color(r) for r in rows], capsize=3)
        ax.set_yticks(y, labels, fontsize=8)
        ends = [max(r.hi or 0, r.median or 0) for r in rows]
        for yi, v, end in zip(y, vals, ends, strict=True):
            ax.text(end, yi, f" {v:,.0f}", va="center", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("requests/s (median, min–max)", fontsize=8)
        ax.set_xlim(0, max(ends) * 1.2)
    fig.suptitle(f"Throughput ({res.mode} run); green: ours, orange: references", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def lag(res: Results, path: Path, plt: Any) -> bool:
    g = res.group("lag")
    if g is None or not g.series:
        return False
    fig, ax = plt.subplots(figsize=(8, 4))
    for name, color in ((g_sync.LAG_LONGPOLL, "#2e7d32"), (g_sync.LAG_INTERVAL, "#6c8ebf")):
        samples = sorted(v for v in g.series.get(name, []) if v > 0)
        if not samples:
            continue
        n = len(samples)
        ax.plot(samples, [(i + 1) / n for i in range(n)], label=f"{name} ({n} writes)", color=color)
    for v, label in ((280.0, "Go p50 280 ms"), (500.0, "Go p99 500 ms")):
        ax.axvline(v, color="#999999", linestyle="--", linewidth=1)
        ax.text(v, 0.03, label, rotation=90, fontsize=8, color="#555555", ha="right")
    ax.axvline(50, color="#c62828", linestyle=":", linewidth=1)
    ax.text(50, 0.03, "goal p99 < 50 ms", rotation=90, fontsize=8, color="#c62828", ha="right")
    ax.set_xscale("log")
    ax.set_xlabel("lag: acknowledged on store1 → visible on store2 (ms, log scale)")
    ax.set_ylabel("fraction of writes")
    ax.set_title(f"Replication lag distribution ({res.mode} run)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def catchup(res: Results, path: Path, plt: Any) -> bool:
    g = res.group("catchup")
    if g is None or not g.series:
        return False
    fig, ax = plt.subplots(figsize=(8, 4))
    i = 1
    while f"run {i} seconds" in g.series:
        ax.plot(g.series[f"run {i} seconds"], g.series[f"run {i} rows"], label=f"run {i}")
        i += 1
    ax.set_xlabel("seconds since the wiped node restarted")
    ax.set_ylabel("rows held by the wiped node")
    ax.set_title(f"Catch-up of a wiped node ({res.mode} run)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def draw(res: Results, img_dir: Path, rel: str) -> list[tuple[str, str]]:
    """Draw every chart that has data into ``img_dir``; (page-relative path, title) of each."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    img_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for fname, title, fn in (
        ("bench-throughput.png", "Throughput per path with its references", throughput),
        ("bench-lag.png", "Replication lag distribution", lag),
        ("bench-catchup.png", "Catch-up curve of a wiped node", catchup),
    ):
        if fn(res, img_dir / fname, plt):
            out.append((f"{rel}/{fname}", title))
    return out
