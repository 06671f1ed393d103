"""The suite's command line: choose the mode and groups, run them, write the page, the charts and
results.json.

Rule: each group starts and stops its own servers; a group that fails is recorded as "not
measured: failed ..." and the others still run; the exit code says whether all of them ran.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import FrameType

from bench.suite import charts, env, g_cli, g_node, g_paths, g_sync, goals, report
from bench.suite.model import Group, Results
from bench.suite.plan import MODES, Plan

GROUPS: dict[str, tuple[str, Callable[[Plan, Results, Path], None]]] = {
    "node": ("1. Data node", g_node.run),
    "balancer": ("2. Load balancer", g_paths.run_balancer),
    "handler": ("3. Request handler", g_paths.run_handler),
    "cli": ("4. CLI", g_cli.run),
    "lag": ("5. Replication lag", g_sync.run_lag),
    "catchup": ("6. Catch-up and 7. memory", g_sync.run_catchup),
}
ALIASES = {"memory": "catchup"}


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description="Run the dtm benchmark suite.")
    ap.add_argument("--quick", action="store_true", help="smaller counts (at most 2 minutes)")
    ap.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # the smoke test
    ap.add_argument(
        "--only",
        default="",
        help="comma-separated groups: " + ", ".join([*GROUPS, *ALIASES]),
    )
    ap.add_argument(
        "--out",
        default=None,
        help="write benchmarks.md, img/ and results.json here (default: docs/ and bench/ for a "
        "whole run; a temporary folder with --only)",
    )
    ap.add_argument("--no-install", action="store_true", help="never apt-get or pip install")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    chosen = [ALIASES.get(x.strip(), x.strip()) for x in args.only.split(",") if x.strip()]
    unknown = [x for x in chosen if x not in GROUPS]
    if unknown:
        print(f"unknown group(s): {', '.join(unknown)}; known: {', '.join(GROUPS)}")
        return 2
    chosen = [k for k in GROUPS if k in chosen] or list(GROUPS)
    env.allow_install = not args.no_install
    signal.signal(signal.SIGTERM, _sigterm)

    if args.out:
        page = Path(args.out) / "benchmarks.md"
        img_dir, rel, results_json = Path(args.out) / "img", "img", Path(args.out) / "results.json"
    elif args.only:
        out = Path(tempfile.mkdtemp(prefix="dtm-bench-out-"))
        page, img_dir, rel, results_json = out / "benchmarks.md", out / "img", "img", out / "r.json"
    else:
        page, img_dir, rel = env.ROOT / "docs/benchmarks.md", env.ROOT / "docs/img", "img"
        results_json = env.ROOT / "bench/results.json"

    command = "python -m bench" + {"full": "", "quick": " --quick", "tiny": " --tiny"}[mode]
    if args.only:
        command += f" --only {','.join(chosen)}"
    workdir = Path(tempfile.mkdtemp(prefix="dtm-bench-"))
    plan = replace(MODES[mode], workdir=workdir)
    for pkg, binary in (
        ("wrk", "wrk"),
        ("redis-server", "redis-benchmark"),
        ("haproxy", "haproxy"),
    ):
        env.ensure_apt(pkg, binary)
    env.ensure_pip("matplotlib", "matplotlib>=3.7")
    res = Results(mode=mode, command=command, machine=env.machine())
    print(f"{command}: groups {', '.join(chosen)}; work folder {workdir}", flush=True)
    failed: list[str] = []
    start = time.perf_counter()
    try:
        for key in chosen:
            title, fn = GROUPS[key]
            t0 = time.perf_counter()
            print(f"== {title}", flush=True)
            before = len(res.groups)
            try:
                fn(plan, res, workdir)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                traceback.print_exc()
                failed.append(key)
                why = f"not measured: failed ({type(exc).__name__}: {exc})"
                if len(res.groups) == before:
                    res.groups.append(Group(key, title))
                for g in res.groups[before:]:
                    if not g.rows:
                        g.not_measured = why.splitlines()[0][:300]
                    else:
                        g.notes.append(why.splitlines()[0][:300])
            print(f"   ({time.perf_counter() - t0:.0f} s)", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    res.seconds = time.perf_counter() - start
    res.goals = goals.evaluate(res)
    shown = charts.draw(res, img_dir, rel)
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(report.render(res, shown))
    results_json.parent.mkdir(parents=True, exist_ok=True)
    results_json.write_text(json.dumps(res.to_json(), indent=1, default=str) + "\n")
    print(
        f"wrote {page}, {results_json} and {len(shown)} charts in {img_dir} "
        f"({res.seconds:.0f} s in all)"
    )
    for gl in res.goals:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[gl.met]
        print(f"  {verdict:>12}  {gl.text}: {gl.shown}")
    if failed:
        print(f"groups that failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
