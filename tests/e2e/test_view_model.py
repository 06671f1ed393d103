"""The live view's one decision, `model.diff`: what happened between two snapshots."""

from __future__ import annotations

from typing import Any

import msgspec

from dtm.view import model
from dtm.view.model import ComponentView, NodeView, PairView, Snapshot, SyncView, diff


def node(name: str, version: int = 1, **kw: Any) -> NodeView:
    return NodeView(name=name, url="u", state="RUNNING", reachable=True, epoch="e-" + name,
                    last_version=version, **kw)  # fmt: skip


def pair(src: str, dst: str, sent: int, reachable: bool = True) -> PairView:
    return PairView(
        source=src,
        target=dst,
        cursor=sent,
        source_last_version=sent,
        lag_versions=0,
        lag_ms=0,
        rows_sent=sent,
        conflicts=0,
        reachable=reachable,
    )


def snap(
    nodes: list[NodeView], pairs: list[PairView], rounds: dict[str, int], **sync: Any
) -> Snapshot:
    comps = [ComponentView(name=n.name, kind="node", state=n.state) for n in nodes]
    conflicts = sync.pop("entries", [])
    view = SyncView(state="RUNNING", reachable=True, pairs=pairs, rounds=rounds, **sync)
    return Snapshot(
        at_ms=7, nodes=nodes, components=comps, conflicts=conflicts, levers=True, sync=view
    )


def kinds(events: list[model.Event]) -> list[tuple[str, str, str, int]]:
    return [(e.kind, e.src, e.dst, e.size) for e in events]


def test_the_first_snapshot_has_no_events() -> None:
    assert diff(None, snap([node("store1")], [], {})) == []


def test_a_write_then_its_batch_and_the_polls_that_found_it() -> None:
    a = snap([node("store1", 1), node("store2", 1)], [pair("store1", "store2", 1)], {"store1": 3})
    wrote = node("store1", 2, writes=1, write_keys=["local.k"])
    b = snap([wrote, node("store2", 1)], [pair("store1", "store2", 1)], {"store1": 3})
    assert kinds(diff(a, b)) == [("write", "store1", "", 1)]
    assert diff(a, b)[0].text == "write on store1: 1 row (local.k), now at version 2"
    c = snap([node("store1", 2), node("store2", 2)], [pair("store1", "store2", 2)], {"store1": 4})
    got = diff(b, c)
    # store2's version rose by the batch's row, which is not its own: no "write" there
    assert kinds(got) == [("poll", "store1", "sync", 1), ("batch", "sync", "store2", 1)]
    assert got[1].text == "batch store1 → store2: 1 row (cursor 2)"


def test_a_conflict_a_purge_a_new_epoch_and_faults() -> None:
    entry = {"key": "k", "node": "store1", "winner": {"deleted": True, "origin": "store2"},
             "loser": {"deleted": False, "origin": "store1"}}  # fmt: skip
    a = snap([node("store1"), node("store2")], [pair("store1", "store2", 1)], {})
    stopped = msgspec.structs.replace(node("store2"), state="STOPPED", reachable=False, error="x")
    b = snap([node("store1"), stopped], [pair("store1", "store2", 1, reachable=False)], {},
             conflicts=1, purged=2, entries=[entry])  # fmt: skip
    got = diff(a, b)
    assert [e.kind for e in got] == ["fault", "fault", "conflict", "purge", "fault"]
    assert "the delete made on store2 beats the write made on store1" in got[2].text
    assert got[3].text == "purged 2 tombstones: every node had the delete"
    assert got[4].text == "store2: RUNNING → STOPPED"
    wiped = msgspec.structs.replace(node("store2"), epoch="new")
    c = snap([node("store1"), wiped], [pair("store1", "store2", 1)], {}, conflicts=1, purged=2)
    back = diff(b, c)
    assert [e.kind for e in back] == ["recover", "recover", "recover"]
    d = snap([node("store1"), msgspec.structs.replace(wiped, epoch="newer", fenced=True)],
             [pair("store1", "store2", 1)], {}, conflicts=1, purged=2)  # fmt: skip
    assert [e.kind for e in diff(c, d)] == ["epoch", "fault"]


def test_a_lever_request_is_checked_at_the_boundary() -> None:
    ok = msgspec.json.decode(b'{"lever":"skew","component":"store1","offset":"+3000"}',
                             type=model.LeverRequest)  # fmt: skip
    assert ok.offset == "+3000"
    for bad in (b'{"lever":"rm","component":"store1"}', b'{"lever":"stop","component":"a b"}',
                b'{"lever":"skew","component":"store1","offset":"1e9"}',
                b'{"lever":"stop","component":"store1","extra":1}'):  # fmt: skip
        try:
            msgspec.json.decode(bad, type=model.LeverRequest)
        except msgspec.ValidationError:
            continue
        raise AssertionError(bad)
    assert msgspec.json.encode(model.LeverAnswer(message="done")) == b'{"message":"done"}'
