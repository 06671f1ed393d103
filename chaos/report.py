"""Per-nemesis figures of a run, and docs/reliability.md from one or more runs.

Rule: an operation counts for every fault window it was invoked in (else for "no fault"); an
anomaly counts for every window open at its time; if none was, for the last ones to close at
most `AFTER_S` before it (a fault's effects outlive it: a wiped node refills, a healed
partition drains); else for "no fault"; availability is the share of operations answered
with success.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chaos.checker import Anomaly, Verdict
from chaos.history import OK, Op, Window

AFTER_S = 10.0
NONE = "no fault"
LOST = ("lost", "lost-update")
STALE = ("stale", "nonmonotonic", "phantom")


@dataclass
class Row:
    label: str
    ops: int = 0
    ok: int = 0
    faults: int = 0
    lost: int = 0
    resurrected: int = 0
    stale: int = 0
    worst: float | None = None  # the lowest availability of one window
    alone_ops: int = 0  # operations while this was the only fault in force
    alone_ok: int = 0

    @property
    def availability(self) -> float | None:
        return self.ok / self.ops if self.ops else None

    @property
    def alone(self) -> float | None:
        return self.alone_ok / self.alone_ops if self.alone_ops else None

    def add(self, other: Row) -> None:
        self.ops += other.ops
        self.ok += other.ok
        self.faults += other.faults
        self.lost += other.lost
        self.resurrected += other.resurrected
        self.stale += other.stale
        self.alone_ops += other.alone_ops
        self.alone_ok += other.alone_ok
        if other.worst is not None:
            self.worst = other.worst if self.worst is None else min(self.worst, other.worst)


def labels_at(t: float, windows: Iterable[Window], after: float = AFTER_S) -> list[str]:
    """The kinds of the windows open at ``t``; if none, of the last ones that closed at most
    ``after`` before it; else "no fault"."""
    ws = list(windows)
    hit = {w.kind for w in ws if w.start <= t <= w.end}
    if not hit:
        ended = [w for w in ws if w.end < t <= w.end + after]
        last = max((w.end for w in ended), default=None)
        hit = {w.kind for w in ended if last is not None and w.end >= last - 1.0}
    return sorted(hit) or [NONE]


def labels_of(a: Anomaly, windows: Iterable[Window], after: float = AFTER_S) -> list[str]:
    """The faults an anomaly counts for. A write lost or undone at the end may have been undone
    by any fault from its acknowledgement on (a node wiped before the sync copied the write):
    those that were in force or struck within ``after`` of it; a read's, `labels_at` its time."""
    ws = list(windows)
    if a.kind in (*LOST, "resurrected"):
        hit = sorted({w.kind for w in ws if w.start <= a.t + after and w.end >= a.t})
        if hit:
            return hit
    return labels_at(a.t, ws, after)


def rows(ops: list[Op], windows: list[Window], verdict: Verdict) -> dict[str, Row]:
    out: dict[str, Row] = {NONE: Row(NONE)}
    for w in windows:
        r = out.setdefault(w.kind, Row(w.kind))
        r.faults += 1
        inside = [o for o in ops if w.start <= o.inv <= w.end]
        if inside:
            share = sum(o.type == OK for o in inside) / len(inside)
            r.worst = share if r.worst is None else min(r.worst, share)
    for o in ops:
        labels = labels_at(o.inv, windows, after=0.0)
        for label in labels:
            r = out[label]
            r.ops += 1
            r.ok += o.type == OK
            if len(labels) == 1:
                r.alone_ops += 1
                r.alone_ok += o.type == OK
    for a in verdict.anomalies:
        for label in labels_of(a, windows):
            r = out.setdefault(label, Row(label))
            r.lost += a.kind in LOST
            r.resurrected += a.kind == "resurrected"
            r.stale += a.kind in STALE
    return out


def row_to_json(r: Row) -> dict[str, Any]:
    return {
        "label": r.label,
        "ops": r.ops,
        "ok": r.ok,
        "faults": r.faults,
        "lost": r.lost,
        "resurrected": r.resurrected,
        "stale": r.stale,
        "worst": r.worst,
        "alone_ops": r.alone_ops,
        "alone_ok": r.alone_ok,
    }


def row_from_json(d: dict[str, Any]) -> Row:
    return Row(**d)


def anomaly_to_json(a: Anomaly, windows: list[Window]) -> dict[str, Any]:
    return {
        "kind": a.kind,
        "task": f"{a.user}.{a.id}",
        "t": a.t,
        "faults": labels_of(a, windows),
        "detail": a.detail,
    }


@dataclass
class RunSummary:
    seed: int
    minutes: float
    nodes: int
    mode: str
    ops: int
    counts: dict[str, int]
    rows: list[Row]
    identical: bool
    converge_s: float | None
    replay: str
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)  # one anomaly of each kind, described


def examples(verdict: Verdict, windows: list[Window]) -> list[str]:
    """The first anomaly of each kind, with the faults it counts for."""
    first: dict[str, Anomaly] = {}
    for a in verdict.anomalies:
        first.setdefault(a.kind, a)
    return [
        f"{a.kind} ({', '.join(labels_of(a, windows))}): task {a.user}.{a.id}: {a.detail}"
        for a in first.values()
    ]


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def table(runs: list[RunSummary]) -> str:
    merged: dict[str, Row] = {}
    for run in runs:
        for r in run.rows:
            merged.setdefault(r.label, Row(r.label)).add(r)
    order = sorted(merged, key=lambda k: (k == NONE, k))
    lines = [
        "| nemesis | operations | faults | lost | resurrected | stale reads | availability"
        " | alone | worst window |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for k in order:
        r = merged[k]
        lines.append(
            f"| {k} | {r.ops} | {r.faults} | {r.lost} | {r.resurrected} | {r.stale} | "
            f"{_pct(r.availability)} | {_pct(r.alone)} | {_pct(r.worst)} |"
        )
    return "\n".join(lines)


GUARANTEES = """\
## What each column means

- **operations**: client operations (create, update, delete, get, list) invoked while a fault
  of that kind was in force; an operation during two faults at once counts for both. "no fault"
  is every operation invoked with no fault in force.
- **faults**: how many times that fault was applied.
- **lost**: an acknowledged write that did not survive. *lost*: a task whose create (or a later
  update) was acknowledged, with no delete that could have followed, is missing after healing;
  *lost-update*: the task ends on a value that an acknowledged later write had replaced (a late
  copy of an older write won). Counted for every fault in force when the write that should
  have won was acknowledged or that struck within 10 s after (a node wiped before the sync
  copied the write); if none, for the last fault to heal at most 10 s before (a fault's
  effects outlive it). A read's anomalies count the same way from the time of the read. A
  fault that strikes while an earlier one's effects last (a wiped node still refilling) takes
  the count: read a row together with the runs' anomaly lists (`python -m chaos.recheck`).
- **resurrected**: a task whose delete was acknowledged, with no later write, is present after
  healing.
- **stale reads**: read-your-writes and monotonic reads, per session (each client is one user
  with one session token). A read (get, list, or the lookup of an update or delete) is stale
  when it shows a state that the session's own acknowledged writes had already replaced: its
  update not shown, its deleted task still listed, its task missing (a `delete` answering 404
  for a task it created); *nonmonotonic* when it shows an older write than an earlier read of
  the same session showed; a value that no write produced counts here too (*phantom*).
- **availability**: the share of those operations that succeeded (a refusal such as
  `ErrNotCaughtUp`, a timeout or a 503 is a failure); **alone**: the same share counting only
  the operations during which this was the only fault in force; **worst window**: the lowest
  share over the single faults of that kind.

An unanswered write (a timeout, a lost connection, a 5xx) may or may not have applied: the
checker accepts either, for up to 30 s after its answer (longer than every timeout on its way);
a write refused definitely (400, or an update whose lookup failed) must not show. Every task is
written by one session only, so "the last acknowledged write" is always defined: a task's final
value must be that write's, or one of the unanswered writes that followed it.
After the last fault heals the harness waits until every node's digest is equal (nodes
identical) and then reads every node's rows with the cluster credential.

A killed balancer, handler or sync is started again at once, as supervisord does; a Python start
takes 0.5 to 1.7 s on a loaded two-core machine (`tests/e2e/test_crash_recovery.py` prints the
time from SIGKILL to the first successful answer). While the balancer is down, the handler holds
each request that no connection could carry and tries it again every 50 ms for up to 5 s
(`dtm.handler.upstream`): a balancer crash costs latency, not failed operations.
*sync-crash-at* restarts the sync with a crash point armed (`DTM_SYNC_CRASH_AFTER=STEP:COUNT`,
read from the process's environment only, `dtm.core.crashpoint`): it SIGKILLs itself the
COUNT-th time an answer of STEP comes back, before its loop takes it in (after a page was
fetched; after a replicate batch was applied, its cursor neither moved nor saved; after a purge;
after an anti-entropy repair; after a cursor save), and is started armed again until the fault
heals. The step is seeded (the short mode's is *applied*, beside a skewed node); the
simulation crashes its sync at every one of these boundaries again and again
(`tests/sim/test_sync_sim.py::test_sim_crash_at_every_step_boundary`).
"""


def markdown(runs: list[RunSummary], command: str) -> str:
    total_ops = sum(r.ops for r in runs)
    total_faults = sum(sum(x.faults for x in r.rows) for r in runs)
    parts = [
        "# Reliability under faults",
        "",
        f"Regenerated by `{command}`: {len(runs)} run(s), {total_ops} operations, "
        f"{total_faults} faults. Each run starts every data node, two balancers, two request "
        "handlers (each failing over between the balancers), the sync and the clients (each "
        "failing over between the handlers, as `todo` does with several URLs) on hosts of "
        "their own (Linux network namespaces on one bridge), as deployed, runs the clients "
        "while the nemeses strike, heals everything, waits for "
        "the nodes to agree and checks the history (`chaos/`; `python -m chaos --help`). "
        "The handler acknowledges a write once two nodes hold it (`[handler] write_copies = 2`: "
        "it pushes the row the first node stored to the others itself, `dtm.handler.copies`): "
        "with the default of 1, a node wiped within the replication lag after acknowledging a "
        "write takes that write with it.",
        "",
        table(runs),
        "",
        "## Runs",
        "",
        "| seed | mode | minutes | nodes | operations | anomalies | nodes identical | "
        "converged after heal | replay |",
        "|---:|---|---:|---:|---:|---|---|---:|---|",
    ]
    for r in runs:
        found = ", ".join(f"{k} {v}" for k, v in sorted(r.counts.items()) if v) or "none"
        conv = "–" if r.converge_s is None else f"{r.converge_s:.1f} s"
        parts.append(
            f"| {r.seed} | {r.mode} | {r.minutes:g} | {r.nodes} | {r.ops} | {found} | "
            f"{'yes' if r.identical else 'NO'} | {conv} | `{r.replay}` |"
        )
    shown = [(r.seed, e) for r in runs for e in r.examples]
    if shown:
        parts += ["", "## One anomaly of each kind, per run", ""]
        parts += [f"- seed {seed}: {e.replace('|', '/')}" for seed, e in shown]
    skipped = sorted({s for r in runs for s in r.skipped})
    if skipped:
        parts += ["", "Faults skipped or degraded: " + "; ".join(skipped) + "."]
    parts += ["", GUARANTEES]
    return "\n".join(parts)
