"""`python -m chaos.recheck RUN_DIR... [--doc PATH --command CMD]`: judge saved runs again.

Each RUN_DIR (run/chaos/seedN) holds a run's history, final rows and fault windows; nothing is
started. Prints every anomaly with the faults it is counted for, and the table; with --doc,
rewrites the reliability page from these runs (after a change to the checker, say), naming CMD
as the command that made them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from chaos import checker, report
from chaos.history import Window, load_ops


def _label(kind: str) -> str:
    """A fault's label as the current code names it (a split once had a direction)."""
    if kind.startswith("split "):
        return "split " + "|".join(sorted(kind.split(" ", 1)[1].split("|")))
    return kind


def judge(root: Path) -> tuple[report.RunSummary, checker.Verdict]:
    ops = load_ops(root / "history.jsonl")
    finals = json.loads((root / "final.json").read_text())
    result = json.loads((root / "result.json").read_text())
    windows = [Window(**dict(w, kind=_label(w["kind"]))) for w in result["windows"]]
    verdict = checker.check(ops, list(finals.values()), bool(result["identical"]))
    for a in verdict.anomalies:
        faults = ", ".join(report.labels_of(a, windows))
        print(f"{root.name} {a.t:.1f} {a.kind} {a.user}.{a.id} [{faults}] {a.detail}")
    rows = report.rows(ops, windows, verdict)
    counts = {k: verdict.count(k) for k in sorted({a.kind for a in verdict.anomalies})}
    summary = report.RunSummary(
        seed=int(result["seed"]),
        minutes=float(result["minutes"]),
        nodes=int(result["nodes"]),
        mode=str(result["mode"]),
        ops=len(ops),
        counts=counts,
        rows=list(rows.values()),
        identical=bool(result["identical"]),
        converge_s=result["converge_s"],
        replay=str(result["replay"]),
        skipped=list(result.get("skipped", [])),
        examples=report.examples(verdict, windows),
    )
    return summary, verdict


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m chaos.recheck", description=__doc__)
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--doc", type=Path)
    p.add_argument("--command", default="make chaos")
    args = p.parse_args(argv)
    judged = [judge(r) for r in args.runs]
    summaries = [s for s, _ in judged]
    print(report.table(summaries))
    if args.doc is not None:
        args.doc.write_text(report.markdown(summaries, args.command) + "\n")
    return 1 if any(not v.valid for _, v in judged) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
