"""The list reads a node page once, lightly, and checks its keys and times for the whole page at
once; whatever a page holds, that gives exactly what the strict row-by-row reading gives."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dtm.errors import ErrUnavailable
from dtm.handler.metrics import HandlerMetrics
from dtm.handler.service import TaskService, _all_times

PREFIX = "tester."
TIME = "2026-12-02T00:59:25.460Z"


def service() -> TaskService:
    return TaskService(None, HandlerMetrics("x"), lambda: 0, bytes, None, None)  # type: ignore[arg-type]


def value(text: str = "t", created: str = TIME, status: str = "open") -> dict[str, Any]:
    return {"text": text, "status": status, "created": created, "updated": TIME}


def row(key: str, val: Any, deleted: bool = False) -> dict[str, Any]:
    return {"key": key, "value": val, "deleted": deleted, "version": 1, "hlc": 2, "origin": "n1"}


ids = st.text("0123456789abcdefghjkmnpqrstvwxyz", min_size=12, max_size=12)
good = st.one_of(
    st.builds(lambda i: row(PREFIX + i, value(f"task {i}")), ids),
    st.builds(lambda i: row(PREFIX + i, {**value(), "due": "2026-12-31", "tags": ["shop"]}), ids),
)
bad = st.one_of(
    st.builds(lambda i: row(PREFIX + i, value(created=TIME.replace("2", "٢"))), ids),
    st.builds(lambda i: row(PREFIX + i, value(created="2026-12-02 00:59:25.460Z")), ids),
    st.builds(lambda i: row(PREFIX + i, value(status="done")), ids),
    st.builds(lambda i: row(PREFIX + i, {**value(), "due": "2026-02-30"}), ids),
    st.builds(lambda i: row(PREFIX + i, {**value(), "tags": ["no spaces"]}), ids),
    st.builds(lambda i: row(PREFIX + i, None), ids),
    st.builds(lambda i: row(PREFIX + i, "a string"), ids),
    st.builds(lambda i: row(PREFIX + i, {**value(), "extra": 1}), ids),
    st.builds(lambda i: row(PREFIX + i, None, deleted=True), ids),
    st.builds(lambda i: row(PREFIX + i[:11] + "u", value()), ids),  # not a task ID
    st.builds(lambda i: row(PREFIX + i + "x", value()), ids),
)
others = st.builds(lambda i: row("zed." + i, value()), ids)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(good, good, bad), max_size=20),
    st.lists(others, max_size=3),
    st.one_of(st.none(), st.just("zed.x")),
)
def test_the_light_reading_gives_what_the_strict_one_gives(
    mine: list[dict[str, Any]], rest: list[dict[str, Any]], nxt: str | None
) -> None:
    rows = sorted(mine, key=lambda r: r["key"]) + rest
    body = msgspec.json.encode({"rows": rows, "next": nxt})
    assert service()._listed(body, PREFIX) == service()._listed_strictly(body, PREFIX)


def test_a_page_of_tasks_is_read_and_its_end_of_range_seen() -> None:
    rows = [row(PREFIX + "a" * 12, value("one")), row("zed.x", value())]
    body = msgspec.json.encode({"rows": rows, "next": "zed.x"})
    items, ended, nxt = service()._listed(body, PREFIX)
    assert items == [("a" * 12, "one", "open", TIME, TIME, None, [])] and ended and nxt == "zed.x"


def test_a_row_that_is_not_a_task_is_skipped_and_counted() -> None:
    s = service()
    rows = [row(PREFIX + "a" * 12, value("one")), row(PREFIX + "b" * 12, value(created="x" * 24))]
    items, _, _ = s._listed(msgspec.json.encode({"rows": rows, "next": None}), PREFIX)
    assert [i[0] for i in items] == ["a" * 12]
    assert s.metrics.n_invalid == 1


def test_an_answer_that_is_not_a_page_is_the_balancers_fault() -> None:
    with pytest.raises(ErrUnavailable):
        service()._listed(b'{"rows": 5}', PREFIX)
    with pytest.raises(ErrUnavailable):
        service()._listed(b"not json", PREFIX)


def test_times_are_checked_as_a_whole() -> None:
    assert _all_times(TIME * 3, 3) and _all_times("", 0)
    assert not _all_times(TIME * 3, 2)
    assert not _all_times(TIME.replace("T", " ") + TIME, 2)
    assert not _all_times(TIME.replace("0", "٠"), 1)  # a digit, but not an ASCII one
