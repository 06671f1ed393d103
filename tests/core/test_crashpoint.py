"""Crash points: parsed from the environment's text, due exactly at the count-th pass."""

from __future__ import annotations

import pytest

from dtm.core import crashpoint
from dtm.core.syncwork import Fetch, Fetched, Save, Saved, Tick
from dtm.errors import ErrSyntaxInvalidArgs
from dtm.wire import ChangesPage, SyncStateFile


def test_parse() -> None:
    assert crashpoint.parse("") is None
    assert crashpoint.parse("applied:3") == crashpoint.CrashPoint("applied", 3)
    assert crashpoint.parse("saved") == crashpoint.CrashPoint("saved", 1)
    for bad in ("lunch", "applied:0", "applied:x", "applied:", ":2"):
        with pytest.raises(ErrSyntaxInvalidArgs, match=crashpoint.ENV):
            crashpoint.parse(bad)


def test_due_at_the_count_th_answer_of_its_step_only() -> None:
    f = Fetch("a", 0, 10, 0, 0)
    fetched = Fetched(f, ChangesPage("a", "e" * 16, 0, []), 1)
    saved = Saved(Save(SyncStateFile([], [])), 1)
    cp = crashpoint.CrashPoint("fetched", 2)
    assert [cp.due(ev) for ev in (fetched, saved, Tick(1), fetched, fetched)] == [
        False,
        False,
        False,
        True,
        False,
    ]
    assert {crashpoint.step_of(fetched), crashpoint.step_of(saved)} <= set(crashpoint.STEPS)
