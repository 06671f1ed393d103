"""The grammar of `todo` commands, shared by the one-shot command line and the shell.

Rule: options (``--json``, ``--url``, ``--token``, ``-h``/``--help``) may appear anywhere before
the text; the first word of free text, or a ``--`` word, ends option parsing, and everything from
there to the end is the text exactly as given. Every mistake is an `ErrSyntaxInvalidArgs` returned
as an `Invalid` command, never raised, so the caller still knows whether ``--json`` was asked for.

Pure: no I/O. One-shot words come from argv (the text is the remaining words joined by one
space); shell words come from one typed line (the text is the rest of the line as typed, so
quotes and backslashes need no escaping and an unbalanced quote is just a character).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dtm.core.tasks import Status, check_text, normalize_ref
from dtm.errors import ErrSyntaxInvalidArgs

STATUSES: tuple[Status, ...] = ("complete", "open")

_WORD = re.compile(r"\S+")


# ---------------------------------------------------------------- words


@dataclass(frozen=True, slots=True)
class Words:
    """The words of one command and, for each word, the text from it to the end."""

    items: tuple[str, ...]
    rests: tuple[str, ...]

    @classmethod
    def from_argv(cls, argv: list[str] | tuple[str, ...]) -> Words:
        items = tuple(argv)
        return cls(items, tuple(" ".join(items[i:]) for i in range(len(items))))

    @classmethod
    def from_line(cls, line: str) -> Words:
        line = line.rstrip("\r\n")
        found = list(_WORD.finditer(line))
        return cls(
            tuple(m.group() for m in found), tuple(line[m.start() :].rstrip() for m in found)
        )

    def __len__(self) -> int:
        return len(self.items)


# ---------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Create:
    text: str


@dataclass(frozen=True, slots=True)
class ListTasks:
    pass


@dataclass(frozen=True, slots=True)
class Update:
    ref: str
    status: Status | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    ref: str


@dataclass(frozen=True, slots=True)
class Help:
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class Shell:
    pass


@dataclass(frozen=True, slots=True)
class Exit:
    pass


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    """`cluster status|conflicts|inspect …`: its own options are read by dtm.cli.cluster_status."""

    args: tuple[str, ...] = ()
    sub: str = "status"


@dataclass(frozen=True, slots=True)
class Empty:
    """A blank or comment line in the shell."""


@dataclass(frozen=True, slots=True)
class Invalid:
    error: ErrSyntaxInvalidArgs


Command = (
    Create | ListTasks | Update | Delete | Help | Shell | Exit | ClusterStatus | Empty | Invalid
)


@dataclass(frozen=True, slots=True)
class Options:
    json: bool = False
    url: str | None = None
    token: str | None = None


@dataclass(frozen=True, slots=True)
class Invocation:
    command: Command
    options: Options = field(default_factory=Options)


# Command words: canonical name -> aliases. A command group (like `cluster status`) is a name
# here, its subcommands in GROUPS, and a parser in `_PARSERS` that reads the subcommand first.
COMMANDS: dict[str, tuple[str, ...]] = {
    "create": ("add",),
    "list": ("ls",),
    "update": (),
    "edit": (),
    "delete": ("rm",),
    "help": (),
    "shell": (),
    "exit": ("quit",),
    "cluster": (),
}
GROUPS: dict[str, tuple[str, ...]] = {"cluster": ("status", "conflicts", "inspect")}
ALIASES: dict[str, str] = {a: name for name, aliases in COMMANDS.items() for a in (name, *aliases)}
SHELL_ONLY = frozenset({"exit"})
ONE_SHOT_ONLY = frozenset({"shell"})


def command_words(in_shell: bool) -> list[str]:
    """Every word that names a command where the grammar is used (for help and completion)."""
    hidden = ONE_SHOT_ONLY if in_shell else SHELL_ONLY
    return sorted(w for w, name in ALIASES.items() if name not in hidden)


# ---------------------------------------------------------------- value rules
# Text and ID rules are the request handler's own (dtm.core.tasks): checked here first so a
# mistake costs no round trip, and checked there again.


def check_status(word: str) -> Status:
    for status in STATUSES:
        if word.lower() == status:
            return status
    raise ErrSyntaxInvalidArgs(f"invalid status {word!r}: use complete or open")


# ---------------------------------------------------------------- the scanner


class _Scanner:
    """Walks the words after the command word, applying options until the text begins."""

    def __init__(self, words: Words, start: int, name: str, in_shell: bool) -> None:
        self.words = words
        self.i = start
        self.name = name
        self.in_shell = in_shell
        self.literal = False  # after `--`: no more options
        self.json = False
        self.url: str | None = None
        self.token: str | None = None
        self.help = False

    def option(self, word: str) -> bool:
        """Apply ``word`` if it is a common option; False if the caller must handle it."""
        if word == "--json":
            self.json = True
        elif word in ("-h", "--help"):
            self.help = True
        elif word == "--url" or word.startswith("--url="):
            self.url = self._value(word, "--url", "http://host:7400")
        elif word == "--token" or word.startswith("--token="):
            self.token = self._value(word, "--token", "dtmu_…")
        else:
            return False
        return True

    def _value(self, word: str, flag: str, example: str) -> str:
        """The value of a start-up option ``flag`` given as ``word`` (``flag=V`` or ``flag V``)."""
        if self.in_shell:
            raise ErrSyntaxInvalidArgs(f"{flag} can only be given when the shell starts")
        if word == flag:
            if self.i >= len(self.words):
                raise ErrSyntaxInvalidArgs(f"{flag} needs a value, e.g. {flag} {example}")
            value = self.words.items[self.i]
            self.i += 1
        else:
            value = word.removeprefix(flag + "=")
        if not value:
            raise ErrSyntaxInvalidArgs(f"{flag} needs a value, e.g. {flag} {example}")
        return value

    def unknown(self, word: str) -> ErrSyntaxInvalidArgs:
        hint = " (put -- before text that begins with a dash)" if self.name in _TEXTUAL else ""
        where = f" for {self.name}" if self.name else ""
        return ErrSyntaxInvalidArgs(f"unknown option {word!r}{where}{hint}")

    def next(self, flags: tuple[str, ...] = ()) -> tuple[int, str] | None:
        """The next positional word (index, word), or a flag of ``flags``; None at the end."""
        while self.i < len(self.words):
            at, word = self.i, self.words.items[self.i]
            self.i += 1
            if self.literal or not word.startswith("-") or word == "-":
                return at, word
            if word == "--":
                self.literal = True
                continue
            if word in flags or any(word.startswith(f + "=") for f in flags):
                return at, word
            if not self.option(word):
                raise self.unknown(word)
        return None

    def rest(self, at: int) -> str:
        return self.words.rests[at]

    def finish(self) -> None:
        """No positional word may follow."""
        extra = self.next()
        if extra is not None:
            raise ErrSyntaxInvalidArgs(
                f"{self.name} takes no further arguments; got {extra[1]!r}"
                if self.name
                else f"unexpected argument {extra[1]!r}"
            )


_TEXTUAL = frozenset({"create", "edit", "update"})


def _text_from(sc: _Scanner) -> str:
    """The free text: from the next word to the end (a leading `--` word is dropped)."""
    nxt = sc.next()
    if nxt is None:
        raise ErrSyntaxInvalidArgs(f"{sc.name} needs the task text")
    return check_text(sc.rest(nxt[0]))


def _need_ref(sc: _Scanner) -> str:
    nxt = sc.next()
    if nxt is None:
        raise ErrSyntaxInvalidArgs(f"{sc.name} needs a task ID")
    return normalize_ref(nxt[1])


def _parse_create(sc: _Scanner) -> Command:
    return Create(_text_from(sc))


def _parse_list(sc: _Scanner) -> Command:
    sc.finish()
    return ListTasks()


def _parse_update(sc: _Scanner) -> Command:
    ref = _need_ref(sc)
    status: Status | None = None
    text: str | None = None
    while (nxt := sc.next(flags=("--text", "--status"))) is not None:
        at, word = nxt
        if word == "--status" or word.startswith("--status="):
            value = word.removeprefix("--status").removeprefix("=")
            if not value:
                v = sc.next()
                if v is None:
                    raise ErrSyntaxInvalidArgs("--status needs complete or open")
                value = v[1]
            word = value
        elif word == "--text" or word.startswith("--text="):
            if word.startswith("--text="):
                text = check_text(sc.rest(at).removeprefix("--text="))
            else:
                text = _text_from(sc)
            break
        if status is not None:
            raise ErrSyntaxInvalidArgs(
                f"update takes one status; got {word!r} after {status!r} "
                "(use --text to change the text)"
            )
        status = check_status(word)
    if status is None and text is None:
        raise ErrSyntaxInvalidArgs("update needs a status (complete or open) or --text <text>")
    return Update(ref, status, text)


def _parse_edit(sc: _Scanner) -> Command:
    ref = _need_ref(sc)
    return Update(ref, None, _text_from(sc))


def _parse_delete(sc: _Scanner) -> Command:
    ref = _need_ref(sc)
    sc.finish()
    return Delete(ref)


def _parse_help(sc: _Scanner) -> Command:
    nxt = sc.next()
    topic: str | None = None
    if nxt is not None:
        topic = ALIASES.get(nxt[1].lower())
        if topic is None:
            raise _unknown_command(nxt[1], sc.in_shell)
        sc.finish()
    return Help(topic)


def _parse_bare(sc: _Scanner) -> Command:
    sc.finish()
    return Shell() if sc.name == "shell" else Exit()


def _parse_cluster(sc: _Scanner) -> Command:
    """`cluster status [args…]`: the words after the subcommand go to its own parser."""
    subs = GROUPS["cluster"]
    if sc.i >= len(sc.words):
        raise ErrSyntaxInvalidArgs(f"cluster needs a subcommand: {', '.join(subs)}")
    sub = sc.words.items[sc.i]
    if sub in ("-h", "--help"):
        return Help("cluster")
    if sub not in subs:
        raise ErrSyntaxInvalidArgs(f"unknown cluster subcommand {sub!r} (have: {', '.join(subs)})")
    return ClusterStatus(sc.words.items[sc.i + 1 :], sub)


_PARSERS = {
    "create": _parse_create,
    "list": _parse_list,
    "update": _parse_update,
    "edit": _parse_edit,
    "delete": _parse_delete,
    "help": _parse_help,
    "shell": _parse_bare,
    "exit": _parse_bare,
    "cluster": _parse_cluster,
}


def _unknown_command(word: str, in_shell: bool) -> ErrSyntaxInvalidArgs:
    import difflib

    close = difflib.get_close_matches(word.lower(), command_words(in_shell), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    where = "help" if in_shell else "todo help"
    shown = word if len(word) <= 30 else word[:30] + "…"
    return ErrSyntaxInvalidArgs(f"unknown command {shown!r} ({hint}try '{where}')")


def parse(words: Words, *, in_shell: bool = False) -> Invocation:
    """Turn the words of one command into an `Invocation` (errors become `Invalid`)."""
    sc = _Scanner(words, 0, "", in_shell)
    try:
        command = _parse(sc, in_shell)
    except ErrSyntaxInvalidArgs as err:
        command = Help(sc.name or None) if _asks_help(sc) else Invalid(err)
    return Invocation(command, Options(sc.json, sc.url, sc.token))


def _asks_help(sc: _Scanner) -> bool:
    """Did the words ask for help (before any `--`), so help wins over a mistake?"""
    if sc.help:
        return True
    if sc.name in _TEXTUAL or sc.literal:
        return False
    for word in sc.words.items[sc.i :]:
        if word == "--":
            return False
        if word in ("-h", "--help"):
            return True
    return False


def _parse(sc: _Scanner, in_shell: bool) -> Command:
    words = sc.words
    if in_shell and (not words.items or words.items[0].startswith("#")):
        return Empty()
    if in_shell and words.items and words.items[0] == "todo":
        sc.i = 1  # `todo list` typed out of habit inside the shell
    first = sc.next()
    if first is None:
        if sc.help:
            return Help()
        return Empty() if in_shell else Shell()
    name = ALIASES.get(first[1].lower())
    if name is None or name in (ONE_SHOT_ONLY if in_shell else SHELL_ONLY):
        if in_shell and name == "shell":
            raise ErrSyntaxInvalidArgs("already in the shell")
        raise _unknown_command(first[1], in_shell)
    sc.name = name
    if sc.help:
        return Help(name)
    command = _PARSERS[name](sc)
    if sc.help:  # `--help` after the command word
        return Help(name)
    return command
