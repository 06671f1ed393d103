"""`python -m chaos.recheck RUN_DIR`: judge a saved run again (its history, final rows and fault
windows), without running anything: for working on the checker, or reading a run's anomalies."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from chaos import checker, report
from chaos.history import Window, load_ops


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    root = Path(argv[0])
    ops = load_ops(root / "history.jsonl")
    finals = json.loads((root / "final.json").read_text())
    result = json.loads((root / "result.json").read_text())
    windows = [Window(**w) for w in result["windows"]]
    verdict = checker.check(ops, list(finals.values()), bool(result["identical"]))
    for a in verdict.anomalies:
        print(
            f"{a.t:.1f} {a.kind} {a.user}.{a.id} [{', '.join(report.labels_at(a.t, windows))}]"
            f" {a.detail}"
        )
    rows = report.rows(ops, windows, verdict)
    summary = report.RunSummary(
        int(result["seed"]),
        float(result["minutes"]),
        int(result["nodes"]),
        result["mode"],
        len(ops),
        {},
        list(rows.values()),
        bool(result["identical"]),
        result["converge_s"],
        "",
    )
    print(report.table([summary]))
    return 1 if verdict.anomalies else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
