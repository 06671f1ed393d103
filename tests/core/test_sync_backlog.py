"""Anti-entropy waits for the cursor path: the backlog rule."""

from __future__ import annotations

from dtm.core.syncstate import SyncEngine
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
