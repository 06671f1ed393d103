"""No untrusted character reaches the terminal raw: `visible` and every human rendering."""

from __future__ import annotations

import io
import json
from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from dtm.cli.render import _UNSAFE, Console, format_error, format_list, visible
from dtm.errors import ErrAmbiguousID, ErrNoDataFound
from dtm.wire import Deleted, Task, TaskList

HOSTILE = "\x1b[2J\x1b]0;pwned\x07\u202eevil\u2066\x9b\x7f\x00\r"


def raw_unsafe(text: str, newlines: bool = False) -> set[str]:
    return {c for c in text if ord(c) in _UNSAFE and not (newlines and c == "\n")}


@given(st.text())
def test_visible_leaves_no_unsafe_character(text: str) -> None:
    assert not raw_unsafe(visible(text))
    assert not raw_unsafe(visible(text, newlines=True), newlines=True)


@given(st.text(st.characters(blacklist_characters=[chr(c) for c in _UNSAFE])))
def test_visible_keeps_safe_text_as_it_is(text: str) -> None:
    assert visible(text) == text


def test_escapes_are_readable() -> None:
    assert visible("a\x1bb\u202ec\nd") == "a\\x1bb\\u202ec\\x0ad"
    assert visible("a\nb", newlines=True) == "a\nb"


def task(text: str, task_id: str = "abcd00000000") -> Task:
    t = "2026-01-01T00:00:00.000Z"
    return Task(id=task_id, text=text, status="open", created=t, updated=t)


def test_every_human_output_escapes_and_json_stays_exact() -> None:
    out, err = io.StringIO(), io.StringIO()
    human = Console(out, err, json=False, human=True, colour=True, err_colour=True)
    hostile_id = "abcd\x1b[31m"
    human.created(task(HOSTILE))
    human.updated(task(HOSTILE, hostile_id), "Updated")
    human.deleted(Deleted(id=hostile_id, deleted=True))
    human.listing(
        TaskList(open=[task(HOSTILE, hostile_id)], complete=[task(HOSTILE)]), date(2026, 1, 1)
    )
    human.error(ErrNoDataFound(f"no task {HOSTILE}"))
    human.error(ErrAmbiguousID("ambiguous", (hostile_id,)))
    human.warn(HOSTILE)
    for text in (out.getvalue(), err.getvalue()):
        # Only our own colour codes (ESC [ digits ; m) may carry an ESC.
        stripped = text.replace("\x1b[0m", "")
        for code in ("1", "2", "1;31", "1;32", "1;33", "1;36", "31", "33"):
            stripped = stripped.replace(f"\x1b[{code}m", "")
        assert not raw_unsafe(stripped, newlines=True), repr(stripped)
        assert "\\x1b" in text
    plain = format_list(TaskList(open=[task(HOSTILE)], complete=[]), colour=False)
    assert "\\u202e" in plain and "\x1b" not in plain
    assert "\x1b" not in format_error(ErrNoDataFound(HOSTILE), colour=False)
    out = io.StringIO()
    Console(out, io.StringIO(), json=True).created(task(HOSTILE))
    assert json.loads(out.getvalue())["text"] == HOSTILE  # JSON: exact
