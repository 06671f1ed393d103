"""The shell on a terminal: prompt_toolkit line editing, history and Tab completion.

Rule: completion offers command words first, then (after update, edit, delete, rm) the short IDs
of the tasks the shell knows from its last list and its own changes, then the status words;
history lives in ``$XDG_STATE_HOME/dtm/history``. Imported only when a shell opens on a terminal.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, History, InMemoryHistory

from dtm.cli.grammar import ALIASES, GROUPS, command_words
from dtm.cli.render import visible
from dtm.cli.shell import Shell
from dtm.cli.state import ensure_dir
from dtm.core.tasks import short_ids

PROMPT = "todo> "
_TAKES_ID = frozenset({"update", "edit", "delete"})


def candidates(shell: Shell, done: list[str]) -> list[tuple[str, str]]:
    """What may come next after the complete words ``done``: (word, description) pairs."""
    if done and done[0] == "todo":
        done = done[1:]
    if not done:
        return [(w, "") for w in command_words(in_shell=True)]
    name = ALIASES.get(done[0].lower())
    if name in _TAKES_ID and len(done) == 1:
        shorts = short_ids(shell.known)
        return [(shorts[i], visible(text)) for i, text in sorted(shell.known.items())]
    if name == "update" and len(done) == 2:
        return [("complete", ""), ("open", ""), ("--text", "change the text")]
    if name in GROUPS and len(done) == 1:
        return [(sub, "") for sub in GROUPS[name]]
    if name == "help" and len(done) == 1:
        return [(w, "") for w in command_words(in_shell=True)]
    return []


class TodoCompleter(Completer):
    def __init__(self, shell: Shell) -> None:
        self.shell = shell

    def get_completions(self, document: Document, event: CompleteEvent) -> Iterable[Completion]:
        before = document.text_before_cursor
        words = before.split()
        current = "" if not before or before[-1].isspace() else words.pop()
        low = current.lower()
        for word, meta in candidates(self.shell, words):
            if not word.startswith(low):
                # Typed past a short ID: complete to the whole ID instead.
                word = next((i for i in self.shell.known if i.startswith(word)), word)
                if word == low or not word.startswith(low):
                    continue
            yield Completion(word, start_position=-len(current), display_meta=meta)


def _history(path: Path, shell: Shell) -> History:
    try:
        ensure_dir(path.parent)
        path.touch(mode=0o600, exist_ok=True)
        return FileHistory(str(path))
    except OSError as exc:
        shell.console.warn(f"history is not kept: cannot use {path}: {exc.strerror or exc}")
        return InMemoryHistory()


def interactive(shell: Shell, history_path: Path) -> int:
    """Prompt, run and repeat until exit, quit or Ctrl-D; Ctrl-C abandons the line."""
    session: PromptSession[str] = PromptSession(
        history=_history(history_path, shell),
        completer=TodoCompleter(shell),
        complete_while_typing=False,
    )
    shell.console.print(
        f"todo shell on {shell.client.base}: type 'help' for the commands, "
        "'exit' or Ctrl-D to leave."
    )
    while True:
        try:
            line = session.prompt(PROMPT)
        except KeyboardInterrupt:
            continue
        except EOFError:
            return shell.status
        if not shell.handle(line):
            return shell.status
