"""Anti-entropy waits for the cursor path: the backlog rule."""

from __future__ import annotations

from dtm.core.syncloop import SyncLoop
from dtm.core.syncstate import SyncEngine
from dtm.core.syncwork import AntiEntropy, LoopConfig
from dtm.wire import CursorRecord, SyncStateFile


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
