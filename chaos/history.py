"""What a run records: every client operation, every fault window, and the nodes' final rows.

Rule: an operation is one record from its invocation to its completion, typed ``ok`` (it took
effect: the handler said so), ``fail`` (it did not: a definite refusal) or ``info`` (unknown: a
timeout, a lost connection, a 5xx); times are CLOCK_MONOTONIC seconds, which every process of
the machine shares, so the workload's records and the nemesis windows line up.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# A task's observable state: (text, status), or None for absent.
State = tuple[str, str] | None

OK, FAIL, INFO = "ok", "fail", "info"
WRITES = frozenset({"create", "update", "delete"})


@dataclass(frozen=True)
class Op:
    client: int
    seq: int  # the client's own order (each client is sequential)
    f: str  # create | update | delete | get | list
    inv: float
    end: float
    type: str  # ok | fail | info
    user: str = ""
    id: str | None = None  # the task (for create: the ID the handler gave, when known)
    value: dict[str, str] | None = None  # the fields written (create: text and status "open")
    # ok get/create/update: {"text", "status"}; ok list: {id: {"text", "status"}}; absent: None
    result: Any = None
    status: int = 0  # HTTP status; 0 when no answer came
    error: str = ""
    token: dict[str, Any] | None = None  # the session token the answer carried (its stamps)

    @property
    def absent_seen(self) -> bool:
        """A read that found the task absent (a get's 404, or an update's or delete's)."""
        return self.error == "ErrNoDataFound" and self.f in ("get", "update", "delete")


@dataclass(frozen=True)
class Window:
    """One fault: what, on which targets, from when to when (monotonic seconds)."""

    kind: str
    target: str
    start: float
    end: float


@dataclass
class Final:
    """After healing: each node's live rows (key -> value) and whether the digests agree."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    identical: bool = False
    converge_s: float | None = None  # seconds from the last heal until the nodes agreed
    errors: list[str] = field(default_factory=list)


def op_to_json(op: Op) -> str:
    return json.dumps(asdict(op), separators=(",", ":"), sort_keys=True)


def op_from_json(line: str) -> Op:
    return Op(**json.loads(line))


def load_ops(path: Path) -> list[Op]:
    ops = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                ops.append(op_from_json(line))
            except (ValueError, TypeError):
                continue  # a line cut short by a kill
    return ops


def state_of(value: Any) -> State:
    """A task value (a node row's or the handler's) as its observable state."""
    if not isinstance(value, dict):
        return None
    return (str(value.get("text")), str(value.get("status")))
