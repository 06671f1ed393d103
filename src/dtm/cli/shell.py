"""The `todo` shell: the same commands, one per line, until `exit`, `quit` or end of input.

Rule: each line is parsed and run on its own (an error prints its ``ErrName: message`` line and
the shell goes on); the shell's exit status is that of the last command it ran (0 if none),
like sh. On a terminal the line editor (prompt_toolkit) is loaded when the shell opens; with
input from a pipe it reads plain lines and prints no prompt.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TextIO

from dtm.cli.client import TaskClient
from dtm.cli.commands import run
from dtm.cli.grammar import Empty, Exit, Words, parse
from dtm.cli.render import Console, is_tty
from dtm.cli.state import history_file
from dtm.wire import Deleted, Task, TaskList


class Shell:
    """The state of one shell: its client, its console, the task IDs it has seen."""

    def __init__(self, client: TaskClient, console: Console) -> None:
        self.client = client
        self.console = console
        self.status = 0
        self.known: dict[str, str] = {}  # task ID -> text, from the last list and later changes

    def handle(self, line: str) -> bool:
        """Run one line; False when the shell should end."""
        inv = parse(Words.from_line(line), in_shell=True)
        cmd = inv.command
        if isinstance(cmd, Empty):
            return True
        if isinstance(cmd, Exit):
            return False
        console = self.console
        if inv.options.json and not console.json:
            console = dataclasses.replace(console, json=True)
        self.status, result = run(cmd, self.client, console, in_shell=True)
        self._remember(result)
        return True

    def _remember(self, result: object) -> None:
        if isinstance(result, TaskList):
            self.known = {t.id: t.text for t in (*result.open, *result.complete)}
        elif isinstance(result, Task):
            self.known[result.id] = result.text
        elif isinstance(result, Deleted):
            self.known.pop(result.id, None)

    def run_lines(self, stdin: TextIO) -> int:
        """Read and run lines until `exit` or the end of input."""
        while True:
            line = stdin.readline()
            if not line or not self.handle(line):
                return self.status


def run_shell(client: TaskClient, console: Console, env: Mapping[str, str], stdin: TextIO) -> int:
    """Open the shell: interactive on a terminal, line by line otherwise."""
    shell = Shell(client, console)
    if is_tty(stdin) and is_tty(console.out):
        from dtm.cli.shell_tty import interactive

        return interactive(shell, history_file(env))
    return shell.run_lines(stdin)
