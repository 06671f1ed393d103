"""The shell on a terminal: prompt_toolkit line editing, history and Tab completion.

Rule: completion offers command words first, then what the command table says comes next: the
short IDs of the tasks the shell knows (loaded when it opens, refreshed after writes), the status
words after update's IDs, a command's fixed words and options; history lives in
``$XDG_STATE_HOME/dtm/history``. Ctrl-C at the prompt abandons the line; during a command it
stops waiting for it (the write may still land) and returns to the prompt; leaving is status 0.
Imported only when a shell opens on a terminal.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, History, InMemoryHistory

from dtm.cli.render import visible
from dtm.cli.shell import Shell
from dtm.cli.state import ensure_dir
from dtm.cli.table import BY_WORD, STATUSES, arg_words, command_words
from dtm.core.tasks import short_ids
from dtm.errors import EXIT_INTERRUPTED

PROMPT = "todo> "
CANCELLED = "cancelled: stopped waiting for the answer; a write may still land (check with list)"


def candidates(shell: Shell, done: list[str]) -> list[tuple[str, str]]:
    """What may come next after the complete words ``done``: (word, description) pairs."""
    if done and done[0] == "todo":
        done = done[1:]
    if not done:
        return [(w, "") for w in command_words(in_shell=True)]
    spec = BY_WORD.get(done[0].lower())
    if spec is None:
        return []
    if spec.name == "help":
        return [(w, "") for w in command_words(in_shell=True)] if len(done) == 1 else []
    flags = [(f, "") for f in spec.flags]
    if spec.args == "ids":
        if len(done) >= 2 and spec.name in ("edit",):
            return flags
        if spec.name == "update" and any(w.lower() in STATUSES for w in done[1:]):
            return flags[1:]
        shorts = short_ids(shell.known)
        seen = {w.lower() for w in done[1:]}
        ids = [
            (shorts[i], visible(text))
            for i, text in sorted(shell.known.items())
            if shorts[i] not in seen and i not in seen
        ]
        if spec.name == "update" and len(done) >= 2:
            words = [(s, "") for s in STATUSES] + [("--text", "change the text")]
            return words + flags[1:] + ids
        return ids
    if len(done) == 1 and arg_words(spec):
        return [(w, "") for w in arg_words(spec)]
    return flags


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
    where = shell.ctx.client.base if shell.ctx.client is not None else "?"
    shell.console.print(
        f"todo shell on {where}: type 'help' for the commands, 'exit' or Ctrl-D to leave."
    )
    while True:
        try:
            line = session.prompt(PROMPT)
        except KeyboardInterrupt:
            continue
        except EOFError:
            return 0
        try:
            if not shell.handle(line):
                return 0
        except KeyboardInterrupt:
            shell.status = EXIT_INTERRUPTED
            shell.console.err.write("\n")
            shell.console.warn(CANCELLED)
