"""Rendering: the two-section table, terminal and piped forms, JSON, and error lines."""

from __future__ import annotations

import io
import json
from datetime import date

from dtm.cli.helptext import help_text
from dtm.cli.render import Console, format_error, format_list, use_colour
from dtm.errors import ErrAmbiguousID, ErrNoDataFound
from dtm.wire import Deleted, Task, TaskList

T0 = "2026-01-02T03:04:05.678Z"


def task(id_: str, text: str, status: str = "open") -> Task:
    return Task(id=id_, text=text, status=status, created=T0, updated=T0)  # type: ignore[arg-type]


LIST = TaskList(
    open=[task("abcd1234wxyz", "Buy groceries"), task("abce5678wxyz", "Call mom")],
    complete=[task("k9m2p3q4r5s6", 'Pay "rent"', "complete")],
)


def console(*, json: bool = False, human: bool = False, colour: bool = False) -> Console:
    return Console(io.StringIO(), io.StringIO(), json, human, colour, colour)


def out(c: Console) -> str:
    assert isinstance(c.out, io.StringIO)
    return c.out.getvalue()


def err(c: Console) -> str:
    assert isinstance(c.err, io.StringIO)
    return c.err.getvalue()


def test_the_list_has_two_sections_with_short_ids() -> None:
    assert format_list(LIST, colour=False) == (
        'Open (2)\n  abcd  Buy groceries\n  abce  Call mom\nCompleted (1)\n  k9m2  Pay "rent"'
    )


def test_short_ids_grow_until_unique_and_align() -> None:
    tl = TaskList(open=[task("abcde1234567", "a"), task("abcdf1234567", "b")], complete=[])
    tl2 = TaskList(open=[*tl.open, task("zzzz00000000", "c")], complete=[])
    assert format_list(tl2, False).splitlines()[1:4] == ["  abcde  a", "  abcdf  b", "  zzzz   c"]


def test_an_empty_list_still_shows_both_sections() -> None:
    assert format_list(TaskList(open=[], complete=[]), False) == (
        "Open (0)\n  (none)\nCompleted (0)\n  (none)"
    )


def test_colour_only_when_asked() -> None:
    assert "\x1b[" in format_list(LIST, colour=True)
    assert "\x1b[" not in format_list(LIST, colour=False)


def test_colour_needs_a_terminal_and_no_no_color() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert use_colour(Tty(), {})
    assert not use_colour(Tty(), {"NO_COLOR": "1"})
    assert not use_colour(Tty(), {"TERM": "dumb"})
    assert not use_colour(io.StringIO(), {})


def test_create_prints_the_bare_id_when_piped_and_a_sentence_on_a_terminal() -> None:
    t = task("abcd1234wxyz", "Buy groceries")
    piped, tty = console(), console(human=True)
    piped.created(t)
    tty.created(t)
    assert out(piped) == "abcd1234wxyz\n"
    assert out(tty) == "Created abcd1234wxyz  Buy groceries\n"


def test_json_forms() -> None:
    c = console(json=True)
    t = task("abcd1234wxyz", 'q"b\\ü')
    c.created(t)
    c.updated(t, "Completed")
    c.listing(LIST, date(2026, 1, 1))
    c.deleted(Deleted(id="abcd1234wxyz", deleted=True))
    lines = [json.loads(x) for x in out(c).splitlines()]
    assert (
        lines[0]
        == lines[1]
        == {
            "id": "abcd1234wxyz",
            "text": 'q"b\\ü',
            "status": "open",
            "created": T0,
            "updated": T0,
            "due": None,
            "tags": [],
        }
    )
    assert [x["id"] for x in lines[2]["open"]] == ["abcd1234wxyz", "abce5678wxyz"]
    assert [x["id"] for x in lines[2]["complete"]] == ["k9m2p3q4r5s6"]
    assert lines[3] == {"id": "abcd1234wxyz", "deleted": True}


def test_errors_name_first_on_stderr() -> None:
    c = console()
    c.error(ErrNoDataFound("no task with ID 'abc1'"))
    assert out(c) == ""
    assert err(c) == "ErrNoDataFound: no task with ID 'abc1'\n"
    j = console(json=True)
    j.error(ErrNoDataFound("no task with ID 'abc1'"))
    assert json.loads(err(j)) == {"error": "ErrNoDataFound", "message": "no task with ID 'abc1'"}


def test_ambiguous_errors_list_candidates_once() -> None:
    e = ErrAmbiguousID("task ID 'abcd' is ambiguous", ("abcd1", "abcd2"))
    assert format_error(e, False) == (
        "ErrAmbiguousID: task ID 'abcd' is ambiguous\n  abcd1\n  abcd2"
    )
    named = ErrAmbiguousID(
        "task ID 'abcd' is ambiguous: it matches abcd1, abcd2", ("abcd1", "abcd2")
    )
    assert format_error(named, False).count("abcd2") == 1
    j = console(json=True)
    j.error(e)
    assert json.loads(err(j))["candidates"] == ["abcd1", "abcd2"]


def test_help_texts() -> None:
    top = help_text(None, in_shell=False)
    for word in ("create", "add", "list", "update", "edit", "delete", "rm", "help", "--json"):
        assert word in top
    assert "3  ErrNoDataFound" in top and "6  ErrUnavailable" in top and "--url" in top
    assert "ErrPayloadTooLarge" in top
    shell = help_text(None, in_shell=True)
    assert "exit" in shell and "todo " not in shell and "--url" not in shell
    assert help_text("delete", in_shell=False).startswith("Usage: todo delete <id>")
