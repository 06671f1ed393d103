"""`python -m chaos`: randomized faults on a real cluster of namespace hosts, and the verdict.

    python -m chaos [--seed N] [--runs R] [--minutes M] [--nodes N] [--clients C] [--short]
                    [--out DIR] [--doc docs/reliability.md]

Each run (seeds N, N+1, ... N+R-1) builds one network-namespace host per data node, balancer,
handler, sync and clients, runs the clients while the nemeses strike, heals, waits for the nodes
to agree and checks the history. It prints each run's anomalies; a failing run prints its seed
and the one command that replays it. Exit status: 0 all runs valid, 1 an anomaly, 2 the harness
could not run (not root, no namespaces, a component that would not start).
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from chaos import report
from chaos.net import unavailable
from chaos.run import ROOT, run_once


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=None, help="the first seed (default: random)")
    p.add_argument("--runs", type=int, default=1, help="how many seeds, from --seed on")
    p.add_argument("--minutes", type=float, default=4.0, help="workload minutes per run")
    p.add_argument("--nodes", type=int, default=3, help="data nodes (2..9)")
    p.add_argument("--clients", type=int, default=4, help="clients (each its own user)")
    p.add_argument("--short", action="store_true", help="the short mode: 75 s, a fixed mix")
    p.add_argument("--out", type=Path, default=ROOT / "run" / "chaos", help="logs and results")
    p.add_argument("--doc", type=Path, default=None, help="write the reliability page here")
    return p


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    why = unavailable()
    if why is not None:
        print(f"chaos: cannot run: {why}", file=sys.stderr)
        return 2
    if not 2 <= args.nodes <= 9:
        print("chaos: --nodes must be 2..9", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    first = args.seed if args.seed is not None else random.randrange(1, 1_000_000)
    runs: list[report.RunSummary] = []
    failed: list[report.RunSummary] = []
    for seed in range(first, first + args.runs):
        print(
            f"chaos: seed {seed} ({'short' if args.short else f'{args.minutes:g} min'}, "
            f"{args.nodes} nodes, {args.clients} clients)",
            flush=True,
        )
        t = time.monotonic()
        try:
            summary, verdict = run_once(
                seed, args.minutes, args.nodes, args.clients, args.short, args.out
            )
        except (RuntimeError, OSError) as exc:
            print(f"chaos: seed {seed}: the harness failed: {exc}", file=sys.stderr)
            return 2
        runs.append(summary)
        found = ", ".join(f"{k} {v}" for k, v in summary.counts.items()) or "no anomaly"
        conv = "never" if summary.converge_s is None else f"{summary.converge_s:.1f} s"
        print(
            f"chaos: seed {seed}: {summary.ops} operations, {found}; nodes identical after "
            f"{conv} ({time.monotonic() - t:.0f} s; {args.out / f'seed{seed}'})",
            flush=True,
        )
        for a in verdict.anomalies[:15]:
            print(f"  {a.kind} {a.user}.{a.id}: {a.detail}")
        if not verdict.valid:
            failed.append(summary)
    if args.doc is not None:
        cmd = "make chaos" + (" MODE=short" if args.short else f" MINUTES={args.minutes:g}")
        cmd += f" NODES={args.nodes}" + (f" SEED={first} RUNS={args.runs}" if args.runs > 1 else "")
        args.doc.write_text(report.markdown(runs, cmd) + "\n")
        print(f"chaos: wrote {args.doc}")
    print(report.table(runs))
    for s in failed:
        print(f"chaos: FAILED seed {s.seed}; replay: {s.replay}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
