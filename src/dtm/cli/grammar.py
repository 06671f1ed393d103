"""The grammar of `todo` commands, shared by the one-shot command line and the shell.

Rule: the first word names a command of the command table (dtm.cli.table), whose parser reads
the rest; options may appear anywhere before the text; every mistake is an
`ErrSyntaxInvalidArgs` returned as an `Invalid` command, never raised, so the caller still knows
whether ``--json`` was asked for; ``--help`` wins over a mistake.

Pure: no I/O.
"""

from __future__ import annotations

import msgspec

from dtm.cli.parsed import (
    ClusterView,
    Command,
    Completion,
    Create,
    Delete,
    Empty,
    Exit,
    Export,
    Help,
    Import,
    Invalid,
    ListTasks,
    SessionReset,
    Shell,
    ShowTask,
    Update,
    Version,
)
from dtm.cli.scan import Options, Scanner, Words
from dtm.cli.table import BY_WORD, available, command_words, unknown_command
from dtm.errors import ErrSyntaxInvalidArgs

__all__ = [
    "ClusterView",
    "Command",
    "Completion",
    "Create",
    "Delete",
    "Empty",
    "Exit",
    "Export",
    "Help",
    "Import",
    "Invalid",
    "Invocation",
    "ListTasks",
    "Options",
    "SessionReset",
    "Shell",
    "ShowTask",
    "Update",
    "Version",
    "Words",
    "command_words",
    "parse",
]


class Invocation(msgspec.Struct, frozen=True):
    command: Command
    options: Options = msgspec.field(default_factory=Options)


def parse(words: Words, *, in_shell: bool = False) -> Invocation:
    """Turn the words of one command into an `Invocation` (errors become `Invalid`)."""
    sc = Scanner(words, 0, "", in_shell)
    try:
        command = _parse(sc, in_shell)
    except ErrSyntaxInvalidArgs as err:
        command = Help(sc.name or None) if _asks_help(sc) else Invalid(err)
    return Invocation(command, sc.options())


def _asks_help(sc: Scanner) -> bool:
    """Did the words ask for help (before any `--`), so help wins over a mistake?"""
    if sc.help:
        return True
    if sc.textual or sc.literal:
        return False
    for word in sc.words.items[sc.i :]:
        if word == "--":
            return False
        if word in ("-h", "--help"):
            return True
    return False


def _parse(sc: Scanner, in_shell: bool) -> Command:
    words = sc.words
    if in_shell and (not words.items or words.items[0].startswith("#")):
        return Empty()
    if in_shell and words.items and words.items[0] == "todo":
        sc.i = 1  # `todo list` typed out of habit inside the shell
    first = sc.next()
    if sc.version:
        return Version()
    if first is None:
        if sc.help:
            return Help()
        return Empty() if in_shell else Shell()
    spec = BY_WORD.get(first[1].lower())
    if spec is None or not available(spec, in_shell):
        if in_shell and spec is not None and spec.name == "shell":
            raise ErrSyntaxInvalidArgs("already in the shell")
        raise unknown_command(first[1], in_shell)
    sc.name = spec.name
    sc.textual = spec.textual
    if sc.help:
        return Help(spec.name)
    command = spec.parse(sc)
    if sc.help:  # `--help` after the command word
        return Help(spec.name)
    return command
