"""`python -m bench [--quick] [--only GROUPS] [--out DIR]` from the repository root: the suite.

Rule: each group starts and stops its own servers; a group that fails is recorded as failed and
the others still run; the exit code says whether all of them ran.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path

from bench import charts, cli, goals, machine, memory, paths, refs, repl, report
from bench.model import MODES, Group, Plan, Results
from bench.systems import original_missing

GROUPS = ("paths", "replication", "references", "cli", "memory")


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer and shorter runs")
    ap.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # the smoke test
    ap.add_argument("--only", default="", help="comma-separated groups: " + ", ".join(GROUPS))
    ap.add_argument("--out", help="write benchmarks.md, img/, results.json here, not docs/")
    return ap.parse_args(argv)


def _run_group(key: str, run: Callable[[], None], res: Results, failed: list[str]) -> None:
    t0 = time.perf_counter()
    print(f"== {key}", flush=True)
    try:
        run()
    except Exception as exc:
        traceback.print_exc()
        failed.append(key)
        why = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        res.groups.append(Group(key, notes=[f"The {key} group failed in this run ({why})."]))
    print(f"   ({time.perf_counter() - t0:.0f} s)", flush=True)


def _outputs(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    """The page, the charts' folder and results.json: docs/ and bench/ for a whole run, else
    ``--out`` or a temporary folder."""
    if not args.out and not args.only:
        root = machine.ROOT
        return root / "docs/benchmarks.md", root / "docs/img", root / "bench/results.json"
    out = Path(args.out or tempfile.mkdtemp(prefix="dtm-bench-out-"))
    return out / "benchmarks.md", out / "img", out / "results.json"


def _measure(res: Results, plan: Plan, chosen: list[str], original: str | None) -> list[str]:
    """Run the chosen groups and judge the goals; the groups that failed."""
    workdir = Path(tempfile.mkdtemp(prefix="dtm-bench-"))
    print(f"{res.command}: {', '.join(chosen)}; original: {original or 'live'}", flush=True)
    failed: list[str] = []
    groups = {
        "paths": partial(paths.run, plan, res, workdir, original),
        "replication": partial(repl.run, plan, res, workdir, original),
        "references": partial(refs.run, plan, res, workdir),
        "cli": partial(cli.run, plan, res, workdir),
        "memory": partial(memory.run, plan, res, workdir),
    }
    try:
        for key in chosen:
            _run_group(key, groups[key], res, failed)
        res.goals = goals.evaluate(res, plan)
        if plan.profile and "paths" in chosen:
            paths.profile_missed(plan, res, workdir, [g.key for g in res.goals if g.met is False])
        goals.attach_profiles(res)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return failed


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    chosen = [x.strip() for x in args.only.split(",") if x.strip()] or list(GROUPS)
    unknown = [x for x in chosen if x not in GROUPS]
    if unknown or not shutil.which("wrk"):
        print(f"unknown: {unknown}" if unknown else "no wrk (make bench-deps)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    private = machine.private_network()
    machine.pin_self()
    command = "python -m bench" + {"full": "", "quick": " --quick", "tiny": " --tiny"}[mode]
    res = Results(mode, command + (f" --only {args.only}" if args.only else ""), machine.describe())
    res.machine["network"] = f"the host's ({private})" if private else "private, loopback only"
    start, load = time.perf_counter(), os.getloadavg()[0]
    failed = _measure(res, MODES[mode], chosen, original_missing(private))
    res.seconds = time.perf_counter() - start
    res.machine["load average (1 min), start → end"] = f"{load:.1f} → {os.getloadavg()[0]:.1f}"
    page, img, results_json = _outputs(args)
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(report.render(res, MODES[mode], charts.draw(res, MODES[mode], img)))
    results_json.parent.mkdir(parents=True, exist_ok=True)
    results_json.write_text(json.dumps(res.to_json(), indent=1, default=str) + "\n")
    print(f"wrote {page} and {results_json} ({res.seconds:.0f} s in all)")
    verdicts = {True: "met", False: "MISSED", None: "not measured"}
    for g in res.goals:
        print(f"  {verdicts[g.met]:>12}  {g.text}: {g.shown}")
    if failed:
        print(f"groups that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
