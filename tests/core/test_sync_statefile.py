"""The cursor file: one fsync per save (the data before the rename), whole after every save;
and the conflict log's entries: what was lost, with stamps as integers and wall-clock ms."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from dtm import wire
from dtm.core.conflicts import Conflict, entry
from dtm.sync import statefile
from dtm.sync.conflictlog import ConflictStore

STATE = wire.SyncStateFile([wire.CursorRecord("store1", "store2", "ab" * 8, "cd" * 8, 7)], [])


def test_a_cursor_save_costs_one_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    path = tmp_path / "sync.state.json"
    statefile.save(path, STATE)
    assert len(calls) == 1
    assert statefile.load(path) == STATE
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["sync.state.json"]  # no temporary left


def row(value: bytes, deleted: bool, hlc: int, origin: str) -> wire.Row:
    return wire.Row("t.k1", msgspec.Raw(value), deleted, 3, hlc, origin)


WIN = row(b'{"text":"Buy"}', False, (1790000000123 << 16) | 2, "store1")
LOSE = row(b"null", True, 1790000000100 << 16, "store2")


def test_a_conflict_entry_says_what_was_lost_and_when() -> None:
    e = entry(Conflict("t.k1", WIN, LOSE, "store2", 1790000000200), 5)
    assert msgspec.json.decode(wire.encode(e)) == {
        "seq": 5,
        "key": "t.k1",
        "winner": {
            "value": {"text": "Buy"},
            "deleted": False,
            "hlc": (1790000000123 << 16) | 2,
            "wall_ms": 1790000000123,
            "origin": "store1",
        },
        "loser": {
            "value": None,
            "deleted": True,
            "hlc": 1790000000100 << 16,
            "wall_ms": 1790000000100,
            "origin": "store2",
        },
        "node": "store2",
        "at_ms": 1790000000200,
    }


def test_the_conflict_log_is_bounded_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "sync.conflicts.db"
    log = ConflictStore(path, cap=3)
    log.append([Conflict("t.k1", WIN, LOSE, "store2", 1790000000000 + i) for i in range(5)])
    log.close()
    again = ConflictStore(path, cap=3)
    got = again.read(10)
    assert got.total == 5
    assert [e.seq for e in got.conflicts] == [3, 4, 5]  # the newest, oldest first
    assert [e.seq for e in again.read(2).conflicts] == [4, 5]
    again.append([Conflict("t.k1", WIN, LOSE, "store1", 1790000000009)])
    assert again.read(10).total == 6 and [e.seq for e in again.read(10).conflicts] == [4, 5, 6]
    assert path.stat().st_mode & 0o777 == 0o600
    again.close()
