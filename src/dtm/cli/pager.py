"""A long listing on a terminal goes through a pager.

Rule: only when stdout is a terminal and the text has more lines than the terminal has rows;
the pager is ``$PAGER`` (split like a shell command line), else ``less -FRX``; an empty
``$PAGER``, or one that cannot start, means no pager. Imported only when a list is printed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TextIO

DEFAULT_PAGER = "less -FRX"


def needs_pager(text: str, rows: int) -> bool:
    return rows > 0 and text.count("\n") + 1 >= rows


def _rows(out: TextIO) -> int:
    try:
        return os.get_terminal_size(out.fileno()).lines
    except (OSError, ValueError, AttributeError):
        return 0


def page(text: str, out: TextIO, env: Mapping[str, str]) -> bool:
    """Show ``text`` through the pager; False if it was not paged (the caller prints it)."""
    command = env.get("PAGER", DEFAULT_PAGER)
    if not command.strip() or not needs_pager(text, _rows(out)):
        return False
    import shlex
    import subprocess

    try:
        argv = shlex.split(command)
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out, env=dict(env))
    except (OSError, ValueError):
        return False
    assert proc.stdin is not None
    try:
        proc.stdin.write((text + "\n").encode("utf-8", "backslashreplace"))
        proc.stdin.close()
    except BrokenPipeError:  # the user left the pager early
        pass
    while True:
        try:
            proc.wait()
            return True
        except KeyboardInterrupt:  # Ctrl-C belongs to the pager while it runs
            continue
