"""What the live view sends the browser: one snapshot of the cluster, and the events between two.

Rule: a `Snapshot` is what one poll of every component saw; `diff(prev, cur)` is the one decision
of what happened between two snapshots (pure: no I/O, no clock; the time is the snapshot's):
a feed page read is a poll, rows sent on a pair a batch, a row of a node's own origin in its feed
a write, a rise of the conflict or purge count a conflict or a purge, a new epoch a wipe, and any
change of reachability, process state or clock fence a fault or a recovery.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

Kind = Literal["poll", "batch", "write", "conflict", "purge", "epoch", "fault", "recover", "lever"]
Text = Annotated[str, Meta(max_length=2000)]


class _Struct(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class NodeView(_Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    name: str
    url: str
    state: str  # the process: RUNNING, PAUSED, STOPPED ... ("" without supervisord)
    reachable: bool
    error: str = ""
    epoch: str = ""
    last_version: int = 0
    live_rows: int = 0
    tombstones: int = 0
    fenced: bool = False
    offset_ms: int = 0  # the furthest clock offset it measured to a peer
    # Rows its change feed holds since the previous poll whose origin is this node: the writes
    # it took from clients (a replicated row keeps its origin), and up to 3 of their keys.
    writes: int = 0
    write_keys: list[str] = []


class PairView(_Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    source: str
    target: str
    cursor: int
    source_last_version: int
    lag_versions: int
    lag_ms: int | None
    rows_sent: int
    conflicts: int
    reachable: bool


class SyncView(_Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    state: str
    reachable: bool
    error: str = ""
    mode: str = ""
    pairs: list[PairView] = []
    rounds: dict[str, int] = {}
    conflicts: int = 0
    awaiting_purge: int = 0
    purged: int = 0
    holds: list[Text] = []  # why each tombstone is kept, in plain words


class ComponentView(_Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    name: str
    kind: str
    state: str


class Snapshot(_Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    at_ms: int
    nodes: list[NodeView]
    sync: SyncView
    components: list[ComponentView]
    conflicts: list[Any]  # the sync's conflict entries, newest first (as it sent them)
    levers: bool  # supervisord answers: the lever buttons work


class Event(_Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    id: int = 0  # set when the event is recorded
    at_ms: int
    kind: Kind
    text: Text
    src: str = ""  # the message's ends, for the drawing (a node name or "sync")
    dst: str = ""
    size: int = 0  # rows (a batch), pages (a poll), versions (a write)


class LeverRequest(_Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    lever: Literal["stop", "start", "restart", "pause", "resume", "wipe", "skew"]
    component: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    offset: Annotated[str, Meta(pattern=r"^[+-]?[0-9]{1,9}(ms|s)?$")] = "0"


class LeverAnswer(_Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    message: Text


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _conflict_text(entry: Any) -> str:
    try:
        w, lo = entry["winner"], entry["loser"]
        what = {True: "delete", False: "write"}
        return (
            f"conflict on {entry['key']}: the {what[bool(w['deleted'])]} made on {w['origin']} "
            f"beats the {what[bool(lo['deleted'])]} made on {lo['origin']} (later stamp); "
            f"decided by {entry['node']}"
        )
    except (KeyError, TypeError):
        return "conflict (an entry this view cannot read)"


def diff(prev: Snapshot | None, cur: Snapshot) -> list[Event]:
    """The events between two snapshots (none for the first)."""
    if prev is None:
        return []
    at = cur.at_ms
    out: list[Event] = []
    ps, cs = prev.sync, cur.sync
    for node, pages in sorted(cs.rounds.items()):
        d = pages - ps.rounds.get(node, pages)
        if d > 0:
            text = f"the sync read {_plural(d, 'page')} of {node}'s change feed"
            out.append(Event(at_ms=at, kind="poll", text=text, src=node, dst="sync", size=d))
    old_pairs = {(p.source, p.target): p for p in ps.pairs}
    for p in cs.pairs:
        old = old_pairs.get((p.source, p.target))
        d = p.rows_sent - old.rows_sent if old is not None else 0
        if d > 0:
            text = f"batch {p.source} → {p.target}: {_plural(d, 'row')} (cursor {p.cursor})"
            out.append(Event(at_ms=at, kind="batch", text=text, src="sync", dst=p.target, size=d))
        if old is not None and old.reachable != p.reachable:
            kind: Kind = "recover" if p.reachable else "fault"
            state = "reachable again" if p.reachable else "unreachable"
            text = f"the sync finds {p.target} {state} (pair {p.source} → {p.target})"
            out.append(Event(at_ms=at, kind=kind, text=text, src="sync", dst=p.target))
    old_nodes = {n.name: n for n in prev.nodes}
    for n in cur.nodes:
        o = old_nodes.get(n.name)
        if o is None:
            continue
        if o.reachable != n.reachable:
            kind = "recover" if n.reachable else "fault"
            why = "answers again" if n.reachable else f"does not answer ({n.error})"
            out.append(Event(at_ms=at, kind=kind, text=f"{n.name} {why}", src=n.name))
        if o.reachable and n.reachable and o.epoch and n.epoch != o.epoch:
            text = f"{n.name} has a new epoch {n.epoch} (was {o.epoch}): its data starts anew"
            out.append(Event(at_ms=at, kind="epoch", text=text, src=n.name))
        elif o.reachable and n.reachable and n.writes > 0:
            keys = ", ".join(n.write_keys) + (", …" if n.writes > len(n.write_keys) else "")
            text = f"write on {n.name}: {_plural(n.writes, 'row')} ({keys}), now at version "
            text += str(n.last_version)
            out.append(Event(at_ms=at, kind="write", text=text, src=n.name, size=n.writes))
        if o.fenced != n.fenced and n.reachable:
            kind = "fault" if n.fenced else "recover"
            word = "fences itself: its clock is too far off" if n.fenced else "is no longer fenced"
            out.append(Event(at_ms=at, kind=kind, text=f"{n.name} {word}", src=n.name))
    if ps.reachable != cs.reachable:
        kind = "recover" if cs.reachable else "fault"
        why = "answers again" if cs.reachable else f"does not answer ({cs.error})"
        out.append(Event(at_ms=at, kind=kind, text=f"the sync {why}", src="sync"))
    if cs.reachable and ps.reachable and cs.conflicts > ps.conflicts:
        new = cur.conflicts[: cs.conflicts - ps.conflicts]
        for entry in reversed(new):
            node = str(entry.get("node", "")) if isinstance(entry, dict) else ""
            text = _conflict_text(entry)
            out.append(Event(at_ms=at, kind="conflict", text=text, src="sync", dst=node))
    if cs.reachable and ps.reachable and cs.purged > ps.purged:
        d = cs.purged - ps.purged
        text = f"purged {_plural(d, 'tombstone')}: every node had the delete"
        out.append(Event(at_ms=at, kind="purge", text=text, src="sync", size=d))
    old_states = {c.name: c.state for c in prev.components}
    for comp in cur.components:
        was = old_states.get(comp.name)
        if was is not None and was != comp.state:
            kind = "recover" if comp.state == "RUNNING" else "fault"
            text = f"{comp.name}: {was} → {comp.state}"
            out.append(Event(at_ms=at, kind=kind, text=text, src=comp.name))
    return out
