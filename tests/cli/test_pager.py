"""A list taller than the terminal goes through $PAGER; a short one, a pipe or an empty PAGER
print directly. A real pseudo-terminal with a set height, a real pager process."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import termios
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TextIO

import pytest

from dtm.cli.pager import page
from dtm.cli.render import Console
from dtm.wire import Task, TaskList

T0 = "2026-11-28T05:00:00.000Z"


@pytest.fixture
def terminal() -> Iterator[TextIO]:
    """A terminal 10 rows high (its reading side is drained by nobody: output is small)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 10, 80, 0, 0))
    out = os.fdopen(slave, "w")
    try:
        yield out
    finally:
        out.close()
        os.close(master)


def pager_env(tmp_path: Path) -> dict[str, str]:
    return {"PAGER": f"sh -c 'cat > {tmp_path}/paged'", "PATH": os.environ["PATH"]}


def test_a_tall_text_goes_through_the_pager(terminal: TextIO, tmp_path: Path) -> None:
    text = "\n".join(f"line {i}" for i in range(30))
    assert page(text, terminal, pager_env(tmp_path))
    assert (tmp_path / "paged").read_text() == text + "\n"


def test_a_short_text_or_an_empty_pager_prints_directly(terminal: TextIO, tmp_path: Path) -> None:
    assert not page("one\ntwo", terminal, pager_env(tmp_path))
    assert not page("\n".join(["x"] * 30), terminal, {"PAGER": ""})
    assert not (tmp_path / "paged").exists()


def test_not_a_terminal_prints_directly(tmp_path: Path) -> None:
    assert not page("\n".join(["x"] * 300), io.StringIO(), pager_env(tmp_path))


def test_a_long_listing_on_a_terminal_is_paged(terminal: TextIO, tmp_path: Path) -> None:
    tasks = [Task(f"{i:04d}abcdefgh", f"task {i}", "open", T0, T0) for i in range(20)]
    console = Console(terminal, io.StringIO(), human=True)
    console.listing(TaskList(tasks, []), date(2026, 1, 1), pager=True, env=pager_env(tmp_path))
    assert "task 19" in (tmp_path / "paged").read_text()
