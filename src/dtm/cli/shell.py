"""The `todo` shell: the same commands, one per line, until `exit`, `quit` or end of input.

Rule: each line is parsed and run on its own (an error prints its ``ErrName: message`` line and
the shell goes on); with input from a pipe the shell's exit status is that of the last command
it ran (0 if none), like sh; on a terminal, leaving is status 0. The shell knows the task IDs
from the start (one list when it opens) and keeps them current after every write. On a terminal
the line editor (prompt_toolkit) is loaded when the shell opens; with input from a pipe it reads
plain lines and prints no prompt.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TextIO

from dtm.cli.commands import Context, run
from dtm.cli.grammar import Create, Delete, Empty, Exit, Import, Update, Words, parse
from dtm.cli.render import Console, is_tty
from dtm.cli.state import history_file
from dtm.errors import DtmError
from dtm.wire import Deleted, Task, TaskList

_WRITES = (Create, Update, Delete, Import)
START_LOAD_TIMEOUT = 2.0  # seconds the shell waits for the task IDs before its first prompt


class Shell:
    """The state of one shell: how it runs commands, the task IDs it has seen."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = dataclasses.replace(ctx, in_shell=True)
        self.status = 0
        self.known: dict[str, str] = {}  # task ID -> text, from the last list and later changes

    @property
    def console(self) -> Console:
        return self.ctx.console

    def load_ids(self, timeout: float | None = None) -> None:
        """Learn every task ID (for Tab completion); quietly nothing if the list fails or
        takes longer than ``timeout`` seconds."""
        client = self.ctx.client
        if client is None:
            return
        saved = client.timeout
        if timeout is not None:
            client.timeout = min(saved, timeout)
        try:
            tasks = client.list()
        except DtmError:
            return
        finally:
            client.timeout = saved
        self.known = {t.id: t.text for t in (*tasks.open, *tasks.complete)}

    def handle(self, line: str) -> bool:
        """Run one line; False when the shell should end."""
        inv = parse(Words.from_line(line), in_shell=True)
        cmd = inv.command
        if isinstance(cmd, Empty):
            return True
        if isinstance(cmd, Exit):
            return False
        ctx = self.ctx
        if inv.options.json and not ctx.console.json:
            ctx = dataclasses.replace(ctx, console=dataclasses.replace(ctx.console, json=True))
        client = ctx.client
        node = None if client is None else client.node
        if client is not None and inv.options.node is not None:
            client.node = inv.options.node
        try:
            self.status, result = run(
                cmd, dataclasses.replace(ctx, pager=ctx.pager and inv.options.pager)
            )
        finally:
            if client is not None:
                client.node = node
        self._remember(result)
        if isinstance(cmd, _WRITES) and self.status == 0:
            self.load_ids()
        return True

    def _remember(self, result: object) -> None:
        if isinstance(result, list):
            for r in result:
                self._remember(r)
        elif isinstance(result, TaskList):  # perhaps filtered: what it shows is added
            self.known.update((t.id, t.text) for t in (*result.open, *result.complete))
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


def run_shell(ctx: Context, stdin: TextIO) -> int:
    """Open the shell: interactive on a terminal, line by line otherwise."""
    shell = Shell(ctx)
    if is_tty(stdin) and is_tty(ctx.console.out):
        from dtm.cli.foreground import owned
        from dtm.cli.shell_tty import interactive

        with owned(stdin.fileno()):  # Ctrl-C reaches this shell, not `make exec`'s make
            with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: start without the IDs
                shell.load_ids(timeout=START_LOAD_TIMEOUT)
            return interactive(shell, history_file(ctx.env))
    return shell.run_lines(stdin)
