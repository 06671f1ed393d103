"""How results and errors look: colours and a tidy table on a terminal, plain text when piped or
when NO_COLOR is set, and JSON with ``--json``.

Rule: results go to stdout and errors to stderr as ``ErrName: message``; colour only on a
terminal without NO_COLOR (or TERM=dumb); ``create`` prints ``Created <id>  <text>`` on a
terminal and the bare full ID when piped, so ``id=$(todo add …)`` works.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

from dtm.core.tasks import MIN_PREFIX, short_ids
from dtm.errors import DtmError
from dtm.wire import Deleted, Task, TaskList, encode, error_body

BOLD, DIM, RED, GREEN, YELLOW, CYAN = "1", "2", "31", "32", "33", "36"


def use_colour(stream: TextIO, env: Mapping[str, str]) -> bool:
    """Colour iff ``stream`` is a terminal and neither NO_COLOR nor TERM=dumb says otherwise."""
    if env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    return is_tty(stream)


def is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def paint(text: str, colour: bool, *codes: str) -> str:
    if not colour or not codes:
        return text
    return f"\x1b[{';'.join(codes)}m{text}\x1b[0m"


def show_id(full: str, colour: bool) -> str:
    """A full ID; in colour its first characters (the least one can type) stand out."""
    if not colour:
        return full
    return paint(full[:MIN_PREFIX], True, BOLD, YELLOW) + paint(full[MIN_PREFIX:], True, DIM)


def format_list(tasks: TaskList, colour: bool) -> str:
    """The open and the completed tasks as two sections, each row ``short-id  text``."""
    shorts = short_ids([t.id for t in (*tasks.open, *tasks.complete)])
    width = max((len(s) for s in shorts.values()), default=MIN_PREFIX)
    lines: list[str] = []
    sections: tuple[tuple[str, list[Task], tuple[str, ...]], ...] = (
        ("Open", tasks.open, (BOLD, GREEN)),
        ("Completed", tasks.complete, (BOLD, CYAN)),
    )
    for title, rows, style in sections:
        lines.append(paint(f"{title} ({len(rows)})", colour, *style))
        if not rows:
            lines.append(paint("  (none)", colour, DIM))
        for t in rows:
            short = shorts[t.id]
            pad = " " * (width - len(short))
            text = paint(t.text, colour, DIM) if t.status == "complete" else t.text
            lines.append(f"  {paint(short, colour, BOLD, YELLOW)}{pad}  {text}")
    return "\n".join(lines)


def format_task_line(verb: str, task: Task, colour: bool) -> str:
    """``<verb> <id>  <text>`` with the first characters of the ID highlighted."""
    return f"{paint(verb, colour, BOLD)} {show_id(task.id, colour)}  {task.text}"


def format_error(err: DtmError, colour: bool) -> str:
    """``ErrName: message``, then any candidate the message does not already name."""
    lines = [f"{paint(err.name, colour, BOLD, RED)}: {err.message}"]
    lines += [f"  {c}" for c in err.candidates if c not in err.message]
    return "\n".join(lines)


def error_json(err: DtmError) -> str:
    return encode(error_body(err)).decode()


@dataclass
class Console:
    """Where and how one command (or one shell) prints."""

    out: TextIO
    err: TextIO
    json: bool = False
    human: bool = False  # stdout is a terminal: the friendly forms
    colour: bool = False  # colours on stdout
    err_colour: bool = False  # colours on stderr

    @classmethod
    def detect(cls, out: TextIO, err: TextIO, env: Mapping[str, str], json: bool) -> Console:
        return cls(out, err, json, is_tty(out), use_colour(out, env), use_colour(err, env))

    def print(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def warn(self, message: str) -> None:
        self.err.write(f"{paint('warning', self.err_colour, BOLD, YELLOW)}: {message}\n")
        self.err.flush()

    def error(self, err: DtmError) -> None:
        text = error_json(err) if self.json else format_error(err, self.err_colour)
        self.err.write(text + "\n")
        self.err.flush()

    def created(self, task: Task) -> None:
        if self.json:
            self.print(encode(task).decode())
        elif self.human:
            self.print(format_task_line("Created", task, self.colour))
        else:
            self.print(task.id)

    def updated(self, task: Task, verb: str) -> None:
        if self.json:
            self.print(encode(task).decode())
        else:
            self.print(format_task_line(verb, task, self.colour))

    def deleted(self, gone: Deleted) -> None:
        if self.json:
            self.print(encode(gone).decode())
        else:
            self.print(f"{paint('Deleted', self.colour, BOLD)} {gone.id}")

    def listing(self, tasks: TaskList) -> None:
        if self.json:
            self.print(encode(tasks).decode())
        else:
            self.print(format_list(tasks, self.colour))
