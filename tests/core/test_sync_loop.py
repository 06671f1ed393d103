"""The sync loop (Ready/Advance): what it hands out, what it logs, how it treats failures."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from dtm.core.syncloop import SyncLoop
from dtm.core.syncstate import SyncEngine
from dtm.core.syncwork import (
    INFO,
    WARNING,
    Failed,
    Fetch,
    Fetched,
    LoopConfig,
    Save,
    Saved,
    Send,
    Sent,
    Work,
)
from dtm.wire import ChangesPage, ReplicateResponse, Row

CFG = LoopConfig(wait_ms=5000, coalesce_ms=3, save_every_ms=50)


def row(key: str, version: int, hlc: int, origin: str) -> Row:
    return Row(key, msgspec.Raw(b"1"), False, version, hlc, origin)


def loop(nodes: tuple[str, ...] = ("a", "b")) -> SyncLoop:
    return SyncLoop(SyncEngine(nodes), CFG, 0)


def fetches(work: tuple[Work, ...]) -> dict[str, Fetch]:
    return {w.source: w for w in work if isinstance(w, Fetch)}


def start(lp: SyncLoop) -> None:
    """Every node answers its first read (empty), so every epoch is known."""
    rd = lp.ready(0)
    for f in fetches(rd.work).values():
        lp.step(Fetched(f, ChangesPage(f.source, "e" + f.source, 0, []), 0))


def test_one_read_per_source_and_long_polls_once_epochs_are_known() -> None:
    lp = loop()
    rd = lp.ready(0)
    assert sorted(fetches(rd.work)) == ["a", "b"]
    assert all(f.wait_ms == 0 for f in fetches(rd.work).values())  # epochs not known yet
    assert fetches(lp.ready(0).work) == {}  # still in flight: not handed out twice
    for f in fetches(rd.work).values():
        lp.step(Fetched(f, ChangesPage(f.source, "e" + f.source, 0, []), 1))
    again = fetches(lp.ready(1).work)
    assert sorted(again) == ["a", "b"] and all(f.wait_ms == 5000 for f in again.values())


def test_a_page_with_rows_is_sent_and_the_next_read_waits_the_coalescing_window() -> None:
    lp = loop()
    start(lp)
    f = fetches(lp.ready(10).work)["a"]
    lp.step(Fetched(f, ChangesPage("a", "ea", 1, [row("k", 1, 100, "a")]), 10))
    rd = lp.ready(10)
    sends = [w for w in rd.work if isinstance(w, Send)]
    assert [(s.batch.target, len(s.batch.rows)) for s in sends] == [("b", 1)]
    assert "a" not in fetches(rd.work)  # not while its batch is in flight
    lp.step(Sent(sends[0], None, ReplicateResponse(1, 0, 1), 11))
    rd = lp.ready(11)
    assert "a" not in fetches(rd.work)  # rows written meanwhile travel in one batch
    assert rd.wake_ms == 10 + CFG.coalesce_ms
    assert "a" in fetches(lp.ready(13).work)
    # one INFO line for the batch: source -> target, rows, version range
    lines = [n.text for n in rd.notes if n.level == INFO]
    assert lines == [
        "replicated a -> b: 1 rows, versions 1..1 (1 applied, 0 already there or older)"
    ]


def test_new_epoch_logged_only_when_it_changed() -> None:
    lp = loop()
    start(lp)
    rd = lp.ready(1)
    assert not [n for n in rd.notes if "epoch" in n.text]
    f = fetches(rd.work)["a"]
    lp.step(Fetched(f, ChangesPage("a", "ea", 0, []), 3))  # same epoch: nothing to say
    rd = lp.ready(3)
    assert not [n for n in rd.notes if "epoch" in n.text]
    f = fetches(rd.work)["a"]
    lp.step(Fetched(f, ChangesPage("a", "wiped", 0, []), 5))
    notes = [n for n in lp.ready(5).notes if "epoch" in n.text]
    assert [n.level for n in notes] == [WARNING] and "new epoch wiped (was ea)" in notes[0].text


def test_a_fault_and_its_recovery_are_one_warning_each() -> None:
    lp = loop()
    start(lp)
    notes = []
    now = 10
    rd = lp.ready(now)
    for _ in range(4):  # a fails four times in a row, each retry after its backoff
        f = fetches(rd.work)["a"]
        lp.step(Failed(f, "a", "refused\n2026 INFO forged line", now))
        now += 6000
        rd = lp.ready(now)
        notes += rd.notes
    assert [n.level for n in notes if "failed" in n.text and n.level >= WARNING] == [WARNING]
    assert all("\n" not in n.text for n in notes)  # a node's message is quoted, not spliced
    assert any('"refused\\n2026 INFO forged line"' in n.text for n in notes)
    assert lp.health["a"].failures == 4
    f = fetches(rd.work)["a"]
    lp.step(Fetched(f, ChangesPage("a", "ea", 0, []), now))
    back = [n for n in lp.ready(now).notes if "reachable again" in n.text]
    assert [n.level for n in back] == [WARNING] and "after 4 failed calls" in back[0].text


def test_a_node_still_starting_when_the_sync_starts_is_no_fault() -> None:
    lp = loop()
    rd = lp.ready(0)
    f = fetches(rd.work)["a"]
    lp.step(Failed(f, "a", "connection refused", 0))  # never reached yet: it is starting too
    rd = lp.ready(200)
    f = fetches(rd.work)["a"]
    lp.step(Fetched(f, ChangesPage("a", "ea", 0, []), 200))
    notes = [*rd.notes, *lp.ready(200).notes]
    assert [n.level for n in notes if n.text.startswith("a ")] == [INFO, INFO]


def test_a_timeout_while_the_sync_itself_was_paused_is_not_blamed_on_the_node() -> None:
    lp = loop()
    start(lp)
    f = fetches(lp.ready(10).work)["a"]
    lp.step(Failed(f, "a", "timed out", 20_000, paused=True))
    rd = lp.ready(20_000)
    assert lp.health["a"].failures == 0 and "a" in lp.reachable()
    assert "a" in fetches(rd.work)  # read again at once, no backoff
    assert not [n for n in rd.notes if n.level >= WARNING]


def test_cursors_saved_once_per_window_from_acknowledged_batches_only() -> None:
    lp = loop()
    start(lp)
    f = fetches(lp.ready(10).work)["a"]
    lp.step(Fetched(f, ChangesPage("a", "ea", 1, [row("k", 1, 100, "a")]), 10))
    (send,) = [w for w in lp.ready(10).work if isinstance(w, Send)]
    assert not [w for w in lp.ready(100).work if isinstance(w, Save)]  # nothing acknowledged
    lp.step(Sent(send, None, ReplicateResponse(1, 0, 1), 100))
    assert not [w for w in lp.ready(101).work if isinstance(w, Save)]  # within the window
    (save,) = [w for w in lp.ready(151).work if isinstance(w, Save)]
    assert [(c.source, c.target, c.version) for c in save.state.cursors] == [
        ("a", "b", 1),
        ("b", "a", 1),  # b's version 1 is a's own row: the echo moved it without a batch
    ]
    lp.step(Saved(save, 151))
    assert not [w for w in lp.ready(300).work if isinstance(w, Save)]


answers = st.lists(st.tuples(st.integers(0, 50), st.booleans(), st.integers(0, 2)), max_size=60)


@settings(max_examples=60, deadline=None)
@given(script=answers)
def test_never_two_reads_of_a_source_nor_two_batches_of_a_pair_in_flight(
    script: list[tuple[int, bool, int]],
) -> None:
    lp = loop(("a", "b", "c"))
    inflight: list[Work] = []
    versions = {"a": 0, "b": 0, "c": 0}
    now = 0
    for pick, ok, writer in script:
        now += 1
        node = "abc"[writer]
        versions[node] += 1
        inflight += lp.ready(now).work
        reads = [w.source for w in inflight if isinstance(w, Fetch)]
        pairs = [(w.batch.source, w.batch.target) for w in inflight if isinstance(w, Send)]
        assert len(reads) == len(set(reads)) and len(pairs) == len(set(pairs))
        if not inflight:
            continue
        w = inflight.pop(pick % len(inflight))
        if isinstance(w, Fetch):
            v = versions[w.source]
            rows = [row(f"k{w.source}{v}", v, now, w.source)] if v > w.since else []
            lp.step(Fetched(w, ChangesPage(w.source, "e" + w.source, v, rows), now))
        elif isinstance(w, Send) and ok:
            t = w.batch.target
            versions[t] += len(w.batch.rows)
            lp.step(Sent(w, None, ReplicateResponse(len(w.batch.rows), 0, versions[t]), now))
        elif isinstance(w, Save):
            lp.step(Saved(w, now))
        else:
            lp.step(Failed(w, "a", "dropped", now))


def test_the_echo_read_before_its_ack_costs_no_call_and_applied_follows() -> None:
    lp = loop()
    start(lp)
    rd = lp.ready(10)
    fa, fb = fetches(rd.work)["a"], fetches(rd.work)["b"]
    lp.step(Fetched(fa, ChangesPage("a", "ea", 1, [row("k", 1, 100, "a")]), 10))
    (send,) = [w for w in lp.ready(10).work if isinstance(w, Send)]
    # b's long-poll wakes with the copy before the replicate's answer is in
    lp.step(Fetched(fb, ChangesPage("b", "eb", 1, [row("k", 1, 100, "a")]), 11))
    rd = lp.ready(11)
    assert not [w for w in rd.work if isinstance(w, Send)]  # a holds it: nothing to send
    assert lp.engine.cursors[("b", "a")].version == 1
    lp.step(Sent(send, None, ReplicateResponse(1, 0, 1), 12))
    lp.ready(12)
    later = [w for w in lp.ready(11 + CFG.applied_delay_ms).work if isinstance(w, Send)]
    assert [(w.batch.source, w.batch.target, w.batch.rows, w.batch.reach) for w in later] == [
        ("b", "a", (), 1)
    ]
