"""A node being filled (full pages of another's feed paged into it) is not long-polled: each batch
the sync writes there would answer that read, only to be thrown away (the echo rule covers it).
Its own writes still leave within the fill poll."""

from __future__ import annotations

import msgspec

from dtm.core.syncfill import AFTER_ANSWER, fill_read_at
from dtm.core.syncloop import SyncLoop
from dtm.core.syncstate import SyncEngine
from dtm.core.syncwork import Fetch, Fetched, LoopConfig, Send, Sent, Work
from dtm.wire import ChangesPage, ReplicateResponse, Row

CFG = LoopConfig(batch=2, wait_ms=5000, fill_poll_ms=100)


def row(key: str, version: int, origin: str = "a") -> Row:
    return Row(key, msgspec.Raw(b"1"), False, version, 1000 + version, origin)


def fetches(work: tuple[Work, ...]) -> dict[str, Fetch]:
    return {w.source: w for w in work if isinstance(w, Fetch)}


def sends(work: tuple[Work, ...]) -> list[Send]:
    return [w for w in work if isinstance(w, Send)]


def test_the_rule() -> None:
    assert fill_read_at(50, None, 40, 100, False) is None  # not being filled: no limit
    assert fill_read_at(150, 49, 40, 100, False) is None  # the last batch was answered long ago
    assert fill_read_at(50, 49, 40, 100, False) == 140  # once per poll
    assert fill_read_at(50, 49, None, 100, False) == 50  # never read yet: now
    assert fill_read_at(500, 49, None, 100, True) == AFTER_ANSWER  # not while one is in flight


def test_a_node_being_filled_is_read_once_per_fill_poll_without_waiting() -> None:
    lp = SyncLoop(SyncEngine(("a", "b")), CFG, 0)
    for f in fetches(lp.ready(0).work).values():  # every epoch known, nothing held yet
        lp.step(Fetched(f, ChangesPage(f.source, "e" + f.source, 0, []), 0))
    rd = lp.ready(10)
    fa, fb = fetches(rd.work)["a"], fetches(rd.work)["b"]
    assert fb.wait_ms == 5000  # nothing being filled: a long poll
    lp.step(Fetched(fa, ChangesPage("a", "ea", 6, [row("k1", 1), row("k2", 2)]), 10))
    rd = lp.ready(10)
    (send,) = sends(rd.work)
    assert not send.batch.complete  # a full page: a backlog is paged into b
    ahead = fetches(rd.work)["a"]
    # b's long poll (handed out before) wakes with the batch the sync just wrote there
    lp.step(Fetched(fb, ChangesPage("b", "eb", 2, [row("k1", 1), row("k2", 2)]), 12))
    assert "b" not in fetches(lp.ready(12).work)  # no new read of b at once
    lp.step(Sent(send, None, ReplicateResponse(2, 0, 2), 14))
    lp.step(Fetched(ahead, ChangesPage("a", "ea", 6, [row("k3", 3), row("k4", 4)]), 15))
    rd = lp.ready(15)
    (send2,) = sends(rd.work)
    assert "b" not in fetches(rd.work)
    assert lp.ready(16).wake_ms > 17  # not woken every ms meanwhile: its answer wakes it
    assert "b" not in fetches(lp.ready(10 + CFG.fill_poll_ms).work)  # not while one is in flight
    lp.step(Sent(send2, None, ReplicateResponse(2, 0, 4), 112))
    again = fetches(lp.ready(112).work)["b"]
    assert again.wait_ms == 0 and again.since == 4  # the echo moved its cursor over both
    lp.step(Fetched(again, ChangesPage("b", "eb", 4, []), 113))
    assert "b" not in fetches(lp.ready(130).work)
    # once nothing was paged into b for a fill poll, b is long-polled again
    late = fetches(lp.ready(112 + CFG.fill_poll_ms).work)["b"]
    assert late.wait_ms == 5000
