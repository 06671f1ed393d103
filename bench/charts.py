"""The page's charts as PNG files: each stage's rate for both systems, and the lag distributions.

Rule: a chart is drawn only from the same `Results` the tables show; without matplotlib (the
`bench` extra) the page has no charts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.model import Plan, Results
from bench.paths import row_name, stages

COLORS = {"dtm": "#2e7d32", "original": "#e07b39"}


def _paths(res: Results, plan: Plan, ax: Any) -> None:
    sts = stages(plan)
    for k, system in enumerate(("dtm", "original")):
        rows = [res.find(row_name(system, st)) for st in sts]
        vals = [(r.stat() or 0) if r else 0 for r in rows]
        ys = [i * 3 + k for i in range(len(sts))]
        ax.barh(ys, vals, color=COLORS[system], label=system)
        for y, v in zip(ys, vals, strict=True):
            ax.text(v, y, f" {v:,.0f}", va="center", fontsize=7)
    ax.set_yticks([i * 3 + 0.5 for i in range(len(sts))], [st.title for st in sts], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("requests/s through the user's path (median of the rounds, log scale)")
    ax.legend(fontsize=8)


def _lag(res: Results, ax: Any) -> None:
    g = res.group("replication")
    for system, color in COLORS.items():
        samples = sorted(v for v in (g.series.get(f"{system} lag ms", []) if g else []) if v > 0)
        if samples:
            n = len(samples)
            ax.plot(samples, [(i + 1) / n for i in range(n)], color=color, label=f"{system} ({n})")
    ax.axvline(50, color="#c62828", linestyle=":", linewidth=1, label="goal: p99 < 50 ms")
    ax.set_xscale("log")
    ax.set_xlabel("replication lag, ms (log scale)")
    ax.set_ylabel("fraction of writes")
    ax.legend(fontsize=8)


def draw(res: Results, plan: Plan, img: Path) -> list[str]:
    """The chart files written into ``img`` (none without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    img.mkdir(parents=True, exist_ok=True)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 9), height_ratios=(3, 2))
    _paths(res, plan, top)
    _lag(res, bottom)
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"dtm beside the original ({res.mode} run)", fontsize=11)
    fig.tight_layout()
    fig.savefig(img / "bench.png", dpi=110)
    plt.close(fig)
    return ["bench.png"]
