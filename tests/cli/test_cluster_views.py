"""The pure parts of `todo cluster status|conflicts|inspect`: plain words, times, verdicts."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import pytest

from dtm import wire
from dtm.cli import cluster_conflicts, cluster_inspect
from dtm.cli.cluster_fmt import plain_reason, stamp_time
from dtm.cli.cluster_status import render, render_nodes
from dtm.errors import ErrUnavailable

MS = 1_764_547_200_000  # 2025-12-01 00:00:00 UTC


def row(origin: str, ms: int, deleted: bool = False, status: str = "open") -> dict[str, Any]:
    value = None if deleted else {"text": "Buy \x1b[31mgroceries", "status": status}
    return {"key": "local.100", "value": value, "deleted": deleted, "version": 3,
            "hlc": ms << 16, "origin": origin}  # fmt: skip


def test_a_stamp_is_shown_as_the_local_time_of_its_physical_part() -> None:
    expect = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(MS / 1000)) + ".250"
    assert stamp_time((MS + 250) << 16) == expect
    assert stamp_time(((MS + 250) << 16) | 3) == expect + " +3"


def test_the_syncs_reasons_read_as_plain_words() -> None:
    assert plain_reason("store2: has not applied it") == "store2 does not have the delete yet"
    assert plain_reason("store1: not reached yet") == "the sync has not heard from store1 yet"
    assert plain_reason("store1: feed not yet applied up to 7 by store2") == (
        "store2 has not copied store1's changes up to version 7 yet"
    )
    assert "cannot bring the old row back" in plain_reason("decided: purged once batches …")
    assert plain_reason("new \x1b[2J words") == "new \\x1b[2J words"  # unknown: escaped as is


def test_conflicts_say_who_won_what_was_lost_and_show_fields_a_newer_sync_adds() -> None:
    entry = {"key": "local.100", "winner": row("store2", MS + 900, deleted=True),
             "loser": row("store1", MS + 100, status="complete"), "node": "store1",
             "at_ms": MS + 1000, "decided_by_rule": "later stamp"}  # fmt: skip
    text = cluster_conflicts.render({"total": 1, "conflicts": [entry]}, 20)
    assert "local.100   decided by store1's apply at" in text
    assert "winner: deleted  (written on store2 at" in text
    assert "loser:  [complete] Buy \\x1b[31mgroceries" in text  # escaped for the terminal
    assert "lost:   the change made on store1 was lost: the task stays deleted" in text
    assert 'decided_by_rule: "later stamp"' in text
    flipped = {**entry, "winner": entry["loser"], "loser": entry["winner"]}
    assert "the delete made on store2 was undone" in cluster_conflicts.lost(flipped)
    empty = cluster_conflicts.render({"total": 0, "conflicts": []}, 20)
    assert empty.startswith("no conflicts so far")


def test_inspect_names_the_nodes_that_lack_the_newest_write() -> None:
    new, old = row("store2", MS + 900, deleted=True), row("store1", MS + 100)
    same, words = cluster_inspect.verdict({"store1": new, "store2": new})
    assert same and words.startswith("every node has the same write (made on store2")
    same, words = cluster_inspect.verdict({"store1": old, "store2": new, "store3": None})
    assert not same and words.startswith("not yet: store1, store3 lack the newest write")
    assert cluster_inspect.matches("local.100abc", "100a") and not cluster_inspect.matches(
        "local.200abc", "100a"
    )


def test_the_status_table_shows_health_offsets_lag_and_why_a_tombstone_is_kept() -> None:
    node = wire.NodeStatus("store1", "e1", 5, 3, 1, MS << 16, 0, {}, True, {"store2": -700})
    nodes = render_nodes([("store1", node), ("store2", ErrUnavailable("down"))])
    first, second = nodes.splitlines()[1:]
    assert first.split()[:2] == ["store1", "FENCED:"] and "-700 ms vs store2" in first
    assert second.split()[:2] == ["store2", "unreachable:"]
    sync = msgspec.convert(
        {"component": "sync", "mode": "longpoll", "nodes": ["store1", "store2"], "forgotten": [],
         "epochs": {}, "pairs": [{"source": "store1", "target": "store2", "cursor": 4,
         "source_last_version": 5, "lag_versions": 1, "lag_seconds": 0.25, "rows_sent": 4,
         "conflicts": 0, "reachable": True}], "conflicts": 2, "tombstones_awaiting_purge": 1,
         "purge_holds": [{"key": "local.1", "hlc": MS << 16, "origin": "store2",
         "waiting_for": ["store1: has not applied it"]}], "purged": 0, "anti_entropy": None,
         "rounds": {"store1": 9}},
        wire.SyncStatus,
    )  # fmt: skip
    text = render(sync, "http://s")
    pair = next(ln for ln in text.splitlines() if ln.startswith("store1 -> store2"))
    assert pair.split() == ["store1", "->", "store2", "4", "5", "1", "250", "4", "0"]
    assert "local.1 (deleted on store2 at" in text and "store1 does not have the delete" in text
    assert "conflicts: 2 (details: todo cluster conflicts)" in text


@pytest.mark.parametrize("bad", ["0", "-3", "x"])
def test_a_bad_limit_is_a_usage_error(bad: str) -> None:
    from dtm.cli.cluster_fmt import check_limit
    from dtm.errors import ErrSyntaxInvalidArgs

    with pytest.raises(ErrSyntaxInvalidArgs):
        check_limit(bad)


def test_the_grammar_knows_the_three_views() -> None:
    from dtm.cli.grammar import ClusterView, Invalid, Words, parse

    got = parse(Words.from_argv(["--json", "cluster", "conflicts", "--limit", "3"]))
    assert got.command == ClusterView("conflicts", ("--limit", "3")) and got.options.json
    assert parse(Words.from_argv(["cluster", "inspect", "abcd"])).command == ClusterView(
        "inspect", ("abcd",)
    )
    assert isinstance(parse(Words.from_argv(["cluster", "frob"])).command, Invalid)
