"""Due dates, tags and list queries: the pure task rules behind `todo add … --due`, `+tag`,
`list milk +shop --due-before …`, and rows written before these fields existed."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtm import wire
from dtm.core import tasks
from dtm.errors import ErrSyntaxInvalidArgs
from dtm.wire import Task, TaskValue, UpdateTask

TODAY = date(2026, 12, 30)
T0 = "2026-11-28T05:00:00.000Z"


def task(i: str, text: str, status: str = "open", due: str | None = None, tags=(), t=T0) -> Task:
    return Task(i * 12, text, status, t, t, due, list(tags))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("word", "day"),
    [
        ("2026-12-31", "2026-12-31"),
        ("today", "2026-12-30"),
        ("Tomorrow", "2026-12-31"),
        ("+3d", "2027-01-02"),
        ("+2w", "2027-01-13"),
        ("+0d", "2026-12-30"),
    ],
)
def test_due_words(word: str, day: str) -> None:
    assert tasks.parse_due(word, TODAY) == day


@pytest.mark.parametrize("word", ["2026-02-30", "31/12/2026", "soon", "+d", "-3d", "2026-1-1", ""])
def test_bad_due_words(word: str) -> None:
    with pytest.raises(ErrSyntaxInvalidArgs):
        tasks.parse_due(word, TODAY)


@given(st.dates(min_value=date(1, 1, 1), max_value=date(9000, 1, 1)), st.integers(0, 9999))
def test_relative_days_count_from_today(today: date, n: int) -> None:
    assert date.fromisoformat(tasks.parse_due(f"+{n}d", today)) == date.fromordinal(
        today.toordinal() + n
    )


def test_tags_in_text() -> None:
    assert tasks.split_tags("Buy milk +shop +Food") == ("Buy milk", ["shop", "food"])
    assert tasks.split_tags("C++ and +1 and +shop!") == ("C++ and +1 and +shop!", [])
    assert tasks.check_tags(["+a", "a", "b"]) == ["a", "b"]
    with pytest.raises(ErrSyntaxInvalidArgs):
        tasks.check_tags([f"t{i}" for i in range(tasks.MAX_TAGS + 1)])
    with pytest.raises(ErrSyntaxInvalidArgs):
        tasks.check_tag("1abc")


def test_overdue_is_open_and_before_today() -> None:
    assert tasks.is_overdue(task("a", "x", due="2026-12-29"), TODAY)
    assert not tasks.is_overdue(task("a", "x", due="2026-12-30"), TODAY)
    assert not tasks.is_overdue(task("a", "x", "complete", due="2026-01-01"), TODAY)
    assert not tasks.is_overdue(task("a", "x"), TODAY)


def test_a_row_written_before_due_and_tags_reads_as_having_none() -> None:
    old = b'{"text":"Buy","status":"open","created":"%s","updated":"%s"}' % (
        T0.encode(),
        T0.encode(),
    )
    value = wire.decode(old, TaskValue)
    assert (value.due, value.tags) == (None, [])
    assert wire.encode(value) == old  # and one without them is stored exactly as before
    assert tasks.to_task("a" * 12, value).tags == []


def test_updates_of_due_and_tags() -> None:
    v = tasks.new_value("Pay", 1_000, "2026-12-31", ["home"])
    assert (v.due, v.tags) == ("2026-12-31", ["home"])
    moved = tasks.apply_update(v, tasks.check_update(UpdateTask(due="2027-01-05")), 2_000)
    assert moved is not None and moved.due == "2027-01-05" and moved.tags == ["home"]
    cleared = tasks.apply_update(moved, tasks.check_update(UpdateTask(due="", tags=[])), 3_000)
    assert cleared is not None and (cleared.due, cleared.tags) == (None, [])
    assert tasks.apply_update(cleared, UpdateTask(due="", tags=[]), 4_000) is None
    with pytest.raises(ErrSyntaxInvalidArgs):
        tasks.check_update(UpdateTask(due="2026-02-30"))
    assert tasks.value_of(tasks.to_task("a" * 12, v)) == v


def test_queries_filter_sort_and_limit() -> None:
    a = task("a", "Buy milk", due="2026-12-31", tags=["shop"], t="2026-11-28T05:00:00.001Z")
    b = task("b", "Call mom", due="2026-12-01", t="2026-11-28T05:00:00.002Z")
    c = task("c", "buy bread", tags=["shop"], t="2026-11-28T05:00:00.003Z")
    d = task("d", "Milk done", "complete", t="2026-11-28T05:00:00.004Z")
    open_, done = [a, b, c], [d]
    assert tasks.select(open_, done, tasks.Query(words=("milk",))) == ([a], [d])
    assert tasks.select(open_, done, tasks.Query(tags=("shop",))) == ([a, c], [])
    assert tasks.select(open_, done, tasks.Query(show="open")) == ([a, b, c], [])
    assert tasks.select(open_, done, tasks.Query(show="complete")) == ([], [d])
    assert tasks.select(open_, done, tasks.Query(sort="due")) == ([b, a, c], [d])
    assert tasks.select(open_, done, tasks.Query(sort="text")) == ([c, a, b], [d])
    assert tasks.select(open_, done, tasks.Query(limit=1)) == ([a], [d])
    assert tasks.select(open_, done, tasks.Query(due_before="2026-12-31")) == ([b], [])


@given(st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32))
def test_the_wire_due_pattern_is_exactly_the_calendar(y: int, m: int, d: int) -> None:
    import re

    text = f"{y:04d}-{m:02d}-{d:02d}"
    try:
        date.fromisoformat(text)
        real = True
    except ValueError:
        real = False
    assert bool(re.match(wire.DUE_PATTERN, text)) == real
    assert real == _is_due(text)


def _is_due(text: str) -> bool:
    try:
        tasks.check_due(text)
    except ErrSyntaxInvalidArgs:
        return False
    return True
