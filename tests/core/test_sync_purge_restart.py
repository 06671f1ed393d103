"""A purge that some nodes confirmed survives a restart of the sync: the restarted sync sends it to
the nodes that missed it. Their feeds were read past the tombstone before the restart, and the
nodes that purged it no longer show it, so a sync that forgot the purge never learns of it again:
the tombstone stays on the node that missed the purge, and anti-entropy copies it back to the
others (undoing the purge, and holding the nodes apart until its next pass)."""

from __future__ import annotations

import msgspec

from dtm.core.syncloop import SyncLoop
from dtm.core.syncplan import Cursor
from dtm.core.syncstate import SyncEngine
from dtm.core.syncwork import LoopConfig, Purge, Save, Saved
from dtm.wire import ChangesPage, PurgeRecord, Row, RowId, SyncStateFile, decode, encode

NODES = ["n1", "n2", "n3"]
EPOCHS = {"n1": "11" * 8, "n2": "22" * 8, "n3": "33" * 8}
NOW = 1_000_000
TOMB = Row("k", msgspec.Raw(b"null"), True, 5, 7 << 16, "n1")
RID = RowId("k", TOMB.hlc, "n1")


def _engine() -> SyncEngine:
    """Every node holds the tombstone at version 5 of its feed; every cursor is past it."""
    eng = SyncEngine(NODES, purge_fence_ms=0)
    for n in NODES:
        eng.observe(n, ChangesPage(n, EPOCHS[n], 9, [TOMB]), 0, 100, NOW)
    for s in NODES:
        for t in NODES:
            if s != t:
                eng.cursors[(s, t)] = Cursor(EPOCHS[s], EPOCHS[t], 9)
    return eng


def _save(eng: SyncEngine) -> bytes:
    state = eng.snapshot()
    eng.on_saved(state)
    return encode(state)


def _restart(disk: bytes) -> SyncEngine:
    eng = SyncEngine(NODES, purge_fence_ms=0)
    eng.restore(decode(disk, SyncStateFile))
    return eng


def test_a_decided_purge_goes_out_only_once_the_state_file_holds_it() -> None:
    eng = _engine()
    assert eng.purge_plan(NODES, NOW) == {}
    assert eng.dirty
    _save(eng)
    assert eng.purge_plan(NODES, NOW) == {n: [RID] for n in NODES}


def test_a_purge_two_nodes_confirmed_reaches_the_third_after_a_restart() -> None:
    eng = _engine()
    eng.purge_plan(NODES, NOW)
    _save(eng)
    assert eng.purge_plan(["n1", "n3"], NOW) == {"n1": [RID], "n3": [RID]}  # n2 unreachable
    eng.on_purged("n1", [RID], 1)
    eng.on_purged("n3", [RID], 1)
    disk = _save(eng)

    back = _restart(disk)
    assert back.purge_plan(NODES, NOW + 1) == {"n2": [RID]}
    assert ("k", TOMB.hlc, "n1") in back.repair_skip()  # anti-entropy leaves it alone
    back.on_purged("n2", [RID], 1)
    assert back.purge_plan(NODES, NOW + 2) == {}
    assert back.snapshot().purges == []


def test_the_loop_sends_a_decided_purge_right_after_the_file_holding_it_is_written() -> None:
    eng = _engine()
    for n in NODES:
        eng.epochs[n] = EPOCHS[n]
    lp = SyncLoop(eng, LoopConfig(purge_every_ms=1000, save_every_ms=50), NOW)
    rd = lp.ready(NOW + 1000)
    assert not [w for w in rd.work if isinstance(w, Purge)]  # decided: the file first
    saves = [w for w in lp.ready(NOW + 1050).work if isinstance(w, Save)]  # the save is due now
    assert len(saves) == 1 and saves[0].state.purges == [PurgeRecord(RID)]
    lp.step(Saved(saves[0], NOW + 1060))
    purges = [w for w in lp.ready(NOW + 1060).work if isinstance(w, Purge)]
    assert sorted(w.node for w in purges) == NODES  # not a purge interval later
