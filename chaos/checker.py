"""The checker: a pure judgement of a history and the nodes' final rows.

Rule: a value a read or the final state shows must come from a write that may still be the
latest one: not definitely failed, invoked before the read ended, and not superseded — a write
w is superseded once an acknowledged write of the same task was invoked after w ended (for an
unanswered write, after w's end plus `INFO_GRACE_S`) and that write ended before the read began.

Every task is written by one client (each client is its own user, and a user reaches only its
own tasks), so each task's writes are one session's sequence. From that rule:

- *lost*: the final state lacks a task whose remaining candidates all wrote it;
- *lost-update*: the final value is an older write's, superseded by an acknowledged one;
- *resurrected*: a task whose remaining candidates are all deletes is present at the end;
- *phantom*: a value (or a task) no write produced;
- *stale*: a session's read shows what its own acknowledged writes had superseded
  (read-your-writes: its own update not shown, its deleted task listed, its task missing);
- *nonmonotonic*: a session's read shows an older write than one of its earlier reads showed;
- *diverged*: the nodes' rows differ after healing and quiescence.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chaos.history import FAIL, OK, Op, State, state_of

# How long after its answer an unanswered write may still apply: longer than every budget of the
# handler (10 s), the balancer (a read timeout per node) and the node's clock tolerance.
INFO_GRACE_S = 30.0
BEFORE = -1  # the index of the state before a task's create: absent


@dataclass(frozen=True)
class Anomaly:
    kind: str
    user: str
    id: str
    t: float  # when it happened (the read's start, or the write that should have won)
    detail: str


@dataclass(frozen=True)
class Write:
    index: int
    op: Op
    fields: dict[str, str] | None  # None: a delete

    def matches(self, s: State, only: frozenset[str] | None = None) -> bool:
        """Whether state ``s`` may be this write's (compared on the fields in ``only``)."""
        if self.fields is None:
            return s is None
        return s is not None and all(
            s[0 if k == "text" else 1] == v
            for k, v in self.fields.items()
            if only is None or k in only
        )

    @property
    def reach(self) -> float:
        """The latest time this write might apply."""
        if self.op.type == OK:
            return self.op.end
        return self.op.end + INFO_GRACE_S


@dataclass
class Verdict:
    anomalies: list[Anomaly] = field(default_factory=list)
    reads: int = 0  # observations judged (one per task per read)

    def count(self, kind: str) -> int:
        return sum(1 for a in self.anomalies if a.kind == kind)

    @property
    def valid(self) -> bool:
        return not self.anomalies


def _fields(op: Op) -> dict[str, str] | None:
    if op.f == "delete":
        return None
    if op.type == OK and isinstance(op.result, dict):
        return {"text": op.result["text"], "status": op.result["status"]}
    return dict(op.value or {})


def allowed(writes: list[Write], r_inv: float, r_end: float) -> list[int]:
    """The indices of the writes a read spanning [r_inv, r_end] may show (BEFORE: absent)."""
    acked = [w for w in writes if w.op.type == OK and w.op.end < r_inv]
    out = [] if acked else [BEFORE]
    for w in writes:
        if w.op.type == FAIL or w.op.inv >= r_end:
            continue
        if any(j.index != w.index and j.op.inv > w.reach for j in acked):
            continue
        out.append(w.index)
    return out


def matching(
    writes: list[Write], idx: Iterable[int], s: State, only: frozenset[str] | None = None
) -> list[int]:
    by = {w.index: w for w in writes}
    return [i for i in idx if (s is None if i == BEFORE else by[i].matches(s, only))]


class _Tasks:
    """Every task's writes, with unanswered creates linked to the task they made."""

    def __init__(self, ops: list[Op], finals: list[dict[str, Any]]) -> None:
        self.writes: dict[tuple[str, str], list[Write]] = defaultdict(list)
        self.anomalies: list[Anomaly] = []
        unsure: dict[tuple[str, str], Op] = {}  # (user, text) -> an unanswered create
        for op in ops:
            if op.f == "create" and op.type != OK and op.value:
                unsure[(op.user, op.value["text"])] = op
        links: dict[tuple[str, str], Op] = {}  # (user, id) -> its create
        for op in ops:
            if op.f == "create" and op.type == OK and op.id:
                links[(op.user, op.id)] = op
        seen: list[tuple[str, str, State]] = []
        for op in ops:
            if op.f == "list" and op.type == OK:
                seen += [(op.user, i, state_of(v)) for i, v in op.result.items()]
        for rows in finals:
            for key, v in rows.items():
                user, _, tid = key.partition(".")
                seen.append((user, tid, state_of(v)))
        made: dict[tuple[str, str], str] = {}
        for user, tid, s in seen:
            if (user, tid) in links or s is None:
                continue
            maker = unsure.get((user, s[0]))
            if maker is None:
                continue
            if (user, s[0]) in made and made[(user, s[0])] != tid:
                self.anomalies.append(
                    Anomaly("duplicate", user, tid, maker.inv, f"create {s[0]!r} made two tasks")
                )
                continue
            made[(user, s[0])] = tid
            links[(user, tid)] = maker
        self.creates = links
        self.by_seq = {(op.client, op.seq): op for op in ops}
        made_by = {id(c): i for (_, i), c in links.items()}
        for op in sorted(ops, key=lambda o: (o.client, o.seq)):
            task = made_by.get(id(op)) if op.f == "create" else op.id
            if op.f in ("create", "update", "delete") and task is not None:
                ws = self.writes[(op.user, task)]
                ws.append(Write(len(ws), op, _fields(op) if op.f != "create" else _create(op)))

    def written_on(self, op: Op) -> str:
        """The node that took a write: the one whose entry its answer's token raised."""
        if not op.token:
            return ""
        before = (
            next(
                (
                    p.token
                    for k in range(op.seq - 1, 0, -1)
                    if (p := self.by_seq.get((op.client, k))) is not None and p.token
                ),
                None,
            )
            or {}
        )
        old, new = before.get("versions", {}), op.token.get("versions", {})
        grew = [n for n, v in new.items() if v > old.get(n, 0)]
        return grew[0] if len(grew) == 1 else ""

    def known_at(self, user: str, seq: int, client: int) -> list[str]:
        """The IDs of ``user``'s tasks whose create was invoked before the op ``seq``."""
        return [
            i
            for (u, i), c in self.creates.items()
            if u == user and c.client == client and c.seq < seq
        ]


def _create(op: Op) -> dict[str, str]:
    if op.type == OK and isinstance(op.result, dict):
        return {"text": op.result["text"], "status": op.result["status"]}
    return {"text": (op.value or {}).get("text", ""), "status": "open"}


def _describe(writes: list[Write], idx: list[int], s: State) -> str:
    want = [("absent" if i == BEFORE else _show(writes[i])) for i in idx]
    return f"saw {s!r}; may show one of {want}"


def _show(w: Write) -> str:
    return f"{w.op.f}#{w.op.seq}[{w.op.type}]{'' if w.fields is None else w.fields}"


def check(ops: list[Op], finals: list[dict[str, Any]], identical: bool = True) -> Verdict:
    """Judge ``ops`` (every client's operations) and ``finals`` (each node's live rows)."""
    tasks = _Tasks(ops, finals)
    v = Verdict(anomalies=list(tasks.anomalies))
    if not identical:
        v.anomalies.append(Anomaly("diverged", "", "", math.inf, "nodes differ after healing"))
    by_client: dict[int, list[Op]] = defaultdict(list)
    for op in ops:
        by_client[op.client].append(op)
    for client_ops in by_client.values():
        _check_session(sorted(client_ops, key=lambda o: o.seq), tasks, v)
    for rows in finals:
        _check_final(rows, tasks, v)
    unique = {(a.kind, a.user, a.id, a.t): a for a in v.anomalies}
    v.anomalies = sorted(unique.values(), key=lambda a: (a.t, a.kind, a.user, a.id))
    return v


def _check_session(ops: list[Op], tasks: _Tasks, v: Verdict) -> None:
    highest: dict[str, int] = {}  # task -> the lowest index its last read could have shown
    for op in ops:
        # (task, state seen, the fields it shows: None for all)
        obs: list[tuple[str, State, frozenset[str] | None]] = []
        if op.f == "get" and op.type == OK and op.id:
            obs.append((op.id, state_of(op.result), None))
        elif op.absent_seen and op.id and op.f != "get":
            obs.append((op.id, None, None))
        elif op.f == "update" and op.type == OK and op.id:
            # read-modify-write: the fields it did not set show the value its lookup read
            kept = frozenset({"text", "status"} - set(op.value or {}))
            if kept:
                obs.append((op.id, state_of(op.result), kept))
        elif op.f == "list" and op.type == OK:
            for tid in tasks.known_at(op.user, op.seq, op.client):
                obs.append((tid, state_of(op.result.get(tid)), None))
            for tid, val in op.result.items():
                if (op.user, tid) not in tasks.creates:
                    detail = f"listed {state_of(val)!r}, which no create made"
                    v.anomalies.append(Anomaly("phantom", op.user, tid, op.inv, detail))
        for tid, s, only in obs:
            # (an update's or delete's lookup happens before its own write)
            writes = [w for w in tasks.writes.get((op.user, tid), []) if w.op is not op]
            if not writes:
                continue
            v.reads += 1
            idx = allowed(writes, op.inv, op.end)
            ok = matching(writes, idx, s, only)
            if not ok:
                ever = matching(writes, [BEFORE, *(w.index for w in writes)], s, only)
                kind = "stale" if ever else "phantom"
                shown = "" if only is None else f" (its {', '.join(sorted(only))})"
                detail = f"{op.f}#{op.seq}{shown}: {_describe(writes, idx, s)}"
                v.anomalies.append(Anomaly(kind, op.user, tid, op.inv, detail))
                continue
            if only is not None:
                continue
            later = [i for i in ok if i >= highest.get(tid, BEFORE)]
            if not later:  # counted once per step back: later reads are judged from here
                before = {w.index: w for w in writes}.get(highest[tid])
                shown = "absent" if before is None else _show(before)
                detail = f"{op.f}#{op.seq}: saw {s!r} after a read showed {shown}"
                v.anomalies.append(Anomaly("nonmonotonic", op.user, tid, op.inv, detail))
            highest[tid] = min(later or ok)


def _check_final(rows: dict[str, Any], tasks: _Tasks, v: Verdict) -> None:
    present: dict[tuple[str, str], State] = {}
    for key, val in rows.items():
        user, _, tid = key.partition(".")
        present[(user, tid)] = state_of(val)
        if (user, tid) not in tasks.creates:
            detail = f"final {state_of(val)!r}, which no create made"
            v.anomalies.append(Anomaly("phantom", user, tid, math.inf, detail))
    for (user, tid), writes in tasks.writes.items():
        s = present.get((user, tid))
        idx = allowed(writes, math.inf, math.inf)
        if matching(writes, idx, s):
            continue
        acked = [w for w in writes if w.op.type == OK]
        t = acked[-1].op.end if acked else writes[-1].op.inv
        where = tasks.written_on(acked[-1].op) if acked else ""
        detail = f"final: {_describe(writes, idx, s)}" + (f"; written on {where}" if where else "")
        puts_left = [i for i in idx if i != BEFORE and writes[i].fields is not None]
        if s is None:
            kind = "lost"
        elif not puts_left:
            kind = "resurrected" if matching(writes, range(len(writes)), s) else "phantom"
        else:
            kind = "lost-update" if matching(writes, range(len(writes)), s) else "phantom"
        v.anomalies.append(Anomaly(kind, user, tid, t, detail))
