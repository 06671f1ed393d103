"""How results and errors look: colours and a tidy table on a terminal, plain text when piped or
when NO_COLOR is set, and JSON with ``--json``.

Rule: results go to stdout and errors to stderr as ``ErrName: message``; colour only on a
terminal without NO_COLOR (or TERM=dumb); ``create`` prints ``Created <id>  <text>`` on a
terminal and the bare full ID when piped, so ``id=$(todo add …)`` works. Every value that came
from elsewhere (task text, IDs, error messages) passes `visible` before it is printed in human
form, so no control or invisible formatting character reaches the terminal raw; ``--json`` is
exact (its encoder escapes control characters itself).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TextIO

from dtm.core.tasks import MIN_PREFIX, is_overdue, short_ids
from dtm.errors import DtmError
from dtm.wire import Deleted, Task, TaskList, encode, error_body

BOLD, DIM, RED, GREEN, YELLOW, CYAN = "1", "2", "31", "32", "33", "36"

# Characters never printed raw: C0 (but a meant line break), DEL, C1, the bidi embeddings,
# overrides and isolates, and the invisible ones that can hide or reorder text.
_UNSAFE = frozenset(
    [
        *range(0x00, 0x20),  # C0
        *range(0x7F, 0xA0),  # DEL, C1
        0x061C,  # Arabic letter mark
        0x180E,  # Mongolian vowel separator
        *range(0x200B, 0x2010),  # zero-width space/joiners, LRM, RLM
        *range(0x2028, 0x202F),  # line/paragraph separators, bidi embeddings and overrides
        *range(0x2060, 0x2070),  # word joiner, invisible operators, bidi isolates
        0xFEFF,  # zero-width no-break space (BOM)
        *range(0xFFF9, 0xFFFC),  # interlinear annotation
    ]
)
_ESCAPES = {c: (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in _UNSAFE}
_ESCAPES_KEEP_NL = {c: e for c, e in _ESCAPES.items() if c != 0x0A}


def visible(text: str, newlines: bool = False) -> str:
    """``text`` with every unsafe character shown as an escape (``\\x1b``, ``\\u202e``); with
    ``newlines``, a line feed stays a line break."""
    return text.translate(_ESCAPES_KEEP_NL if newlines else _ESCAPES)


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
    full = visible(full)
    if not colour:
        return full
    return paint(full[:MIN_PREFIX], True, BOLD, YELLOW) + paint(full[MIN_PREFIX:], True, DIM)


def _extras(task: Task, today: date | None, colour: bool) -> str:
    """``  +tag…  due DAY`` (``overdue`` when it is): what a row shows after the text."""
    parts = [paint("+" + visible(t), colour, CYAN) for t in task.tags]
    if task.due is not None:
        if today is not None and is_overdue(task, today):
            parts.append(paint(f"due {task.due} overdue", colour, BOLD, RED))
        else:
            parts.append(paint(f"due {task.due}", colour, DIM))
    return "  " + "  ".join(parts) if parts else ""


def format_list(
    tasks: TaskList,
    colour: bool,
    today: date | None = None,
    sections: tuple[str, ...] = ("open", "complete"),
    all_ids: Iterable[str] | None = None,
) -> str:
    """The open and the completed tasks as two sections, each row ``short-id  text  extras``.

    Short IDs are unique among ``all_ids`` (every task, when the list is filtered)."""
    shown_ids = [t.id for t in (*tasks.open, *tasks.complete)]
    shorts = short_ids([*shown_ids, *(all_ids or ())])
    width = max((len(shorts[i]) for i in shown_ids), default=MIN_PREFIX)
    lines: list[str] = []
    all_sections: tuple[tuple[str, str, list[Task], tuple[str, ...]], ...] = (
        ("open", "Open", tasks.open, (BOLD, GREEN)),
        ("complete", "Completed", tasks.complete, (BOLD, CYAN)),
    )
    for key, title, rows, style in all_sections:
        if key not in sections:
            continue
        lines.append(paint(f"{title} ({len(rows)})", colour, *style))
        if not rows:
            lines.append(paint("  (none)", colour, DIM))
        for t in rows:
            short = visible(shorts[t.id])
            pad = " " * max(0, width - len(short))
            shown = visible(t.text)
            text = paint(shown, colour, DIM) if t.status == "complete" else shown
            extras = _extras(t, today, colour)
            lines.append(f"  {paint(short, colour, BOLD, YELLOW)}{pad}  {text}{extras}")
    return "\n".join(lines)


def format_task(task: Task, colour: bool, today: date | None = None) -> str:
    """Every field of one task, one per line."""
    due = "-" if task.due is None else task.due
    if task.due is not None and today is not None and is_overdue(task, today):
        due += " " + paint("(overdue)", colour, BOLD, RED)
    rows = [
        ("ID", show_id(task.id, colour)),
        ("Text", visible(task.text)),
        ("Status", task.status),
        ("Due", due),
        ("Tags", " ".join("+" + visible(t) for t in task.tags) or "-"),
        ("Created", task.created),
        ("Updated", task.updated),
    ]
    return "\n".join(f"{paint((k + ':').ljust(8), colour, BOLD)} {v}" for k, v in rows)


def format_task_line(verb: str, task: Task, colour: bool) -> str:
    """``<verb> <id>  <text>  +tags  due DAY`` with the first characters of the ID
    highlighted."""
    extras = _extras(task, None, colour)
    return f"{paint(verb, colour, BOLD)} {show_id(task.id, colour)}  {visible(task.text)}{extras}"


def format_error(err: DtmError, colour: bool) -> str:
    """``ErrName: message``, then any candidate the message does not already name."""
    name, message = visible(err.name), visible(err.message)
    lines = [f"{paint(name, colour, BOLD, RED)}: {message}"]
    lines += [f"  {visible(c)}" for c in err.candidates if c not in err.message]
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
        self.err.write(f"{paint('warning', self.err_colour, BOLD, YELLOW)}: {visible(message)}\n")
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
            self.print(visible(task.id))

    def updated(self, task: Task, verb: str) -> None:
        if self.json:
            self.print(encode(task).decode())
        else:
            self.print(format_task_line(verb, task, self.colour))

    def deleted(self, gone: Deleted) -> None:
        if self.json:
            self.print(encode(gone).decode())
        else:
            self.print(f"{paint('Deleted', self.colour, BOLD)} {visible(gone.id)}")

    def shown(self, task: Task, today: date) -> None:
        if self.json:
            self.print(encode(task).decode())
        else:
            self.print(format_task(task, self.colour, today))

    def listing(
        self,
        tasks: TaskList,
        today: date,
        sections: tuple[str, ...] = ("open", "complete"),
        all_ids: Iterable[str] = (),
        pager: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if self.json:
            self.print(encode(tasks).decode())
            return
        text = format_list(tasks, self.colour, today, sections, all_ids)
        if pager and self.human and env is not None:
            from dtm.cli.pager import page

            if page(text, self.out, env):
                return
        self.print(text)
