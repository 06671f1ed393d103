"""Anti-entropy waits for the cursor path: the backlog rule."""

from __future__ import annotations

from dtm.core.repair import moved_epochs
from dtm.core.syncloop import SyncLoop
from dtm.core.syncstate import SyncEngine
from dtm.core.syncwork import AntiEntropy, LoopConfig, Repaired
from dtm.wire import CursorRecord, Digest, SyncStateFile


def test_backlog_counts_what_the_cursor_path_still_owes() -> None:
    eng = SyncEngine(["s1", "s2", "s3"])
    eng.learn_epoch("s1", "e1", 5)
    eng.learn_epoch("s2", "e2", 0)
    eng.learn_epoch("s3", "e3", 2)
    assert eng.backlog(["s1", "s2"]) == 5  # s1 -> s2 owes 5 versions
    eng.restore(SyncStateFile([CursorRecord("s1", "s2", "e1", "e2", 5)]))
    assert eng.backlog(["s1", "s2"]) == 0
    # s3 is not reachable: what it owes or is owed does not hold anti-entropy back
    assert eng.backlog(["s1", "s2", "s3"]) == 5 + 2 + 2
    # a cursor recorded at an old epoch of the target counts for nothing
    eng.learn_epoch("s2", "wiped", 0)
    assert eng.backlog(["s1", "s2"]) == 5


def test_a_pass_that_waited_for_the_cursor_path_runs_as_soon_as_it_is_through() -> None:
    eng = SyncEngine(["s1", "s2"])
    eng.learn_epoch("s1", "e1", 5)
    eng.learn_epoch("s2", "e2", 0)
    cfg = LoopConfig(anti_entropy_every_ms=30_000, anti_entropy_retry_ms=1000)
    lp = SyncLoop(eng, cfg, 0)
    waits = [lp.ready(30_000), lp.ready(31_000)]  # owed both times
    assert not [w for rd in waits for w in rd.work if isinstance(w, AntiEntropy)]
    assert sum("anti-entropy waits" in n.text for rd in waits for n in rd.notes) == 1
    eng.restore(SyncStateFile([CursorRecord("s1", "s2", "e1", "e2", 5)]))  # the path is through
    rd = lp.ready(32_000)
    assert [w.nodes for w in rd.work if isinstance(w, AntiEntropy)] == [("s1", "s2")]


def test_a_pass_carries_the_epochs_last_read_and_learns_a_new_one_without_repairing() -> None:
    """A node wiped after its last read looks caught up to the cursor path until the sync reads
    it again; a pass that meets it first at its new epoch repairs nothing (the cursor path then
    copies it from its feed's start: repairing would copy it bucket by bucket, and twice)."""
    eng = SyncEngine(["s1", "s2"])
    eng.learn_epoch("s1", "e1", 5)
    eng.learn_epoch("s2", "e2", 5)
    eng.restore(
        SyncStateFile(
            [CursorRecord("s1", "s2", "e1", "e2", 5), CursorRecord("s2", "s1", "e2", "e1", 5)]
        )
    )
    lp = SyncLoop(eng, LoopConfig(anti_entropy_every_ms=30_000), 0)
    (ae,) = [w for w in lp.ready(30_000).work if isinstance(w, AntiEntropy)]
    assert dict(ae.epochs) == {"s1": "e1", "s2": "e2"}
    digests = {
        "s1": Digest("s1", "e1", 5, ["a" * 16]),
        "s2": Digest("s2", "wiped", 0, ["b" * 16]),  # wiped since it was last read
    }
    assert moved_epochs(dict(ae.epochs), digests) == ["s2"]
    assert moved_epochs(dict(ae.epochs), {"s1": digests["s1"]}) == []
    assert moved_epochs({}, {"s1": digests["s1"]}) == ["s1"]  # never read: not repaired yet
    epochs = {n: (d.epoch, d.last_version) for n, d in digests.items()}
    lp.step(Repaired(ae, epochs, [], 0, 1, "s2: at another epoch", 30_001))
    notes = [n.text for n in lp.ready(30_001).notes]
    assert [t for t in notes if "anti-entropy" in t] == [
        'anti-entropy stopped early: "s2: at another epoch"'
    ]
    assert eng.epochs["s2"] == "wiped"
    assert eng.backlog(["s1", "s2"]) == 5  # the cursor path owes s2 everything again
