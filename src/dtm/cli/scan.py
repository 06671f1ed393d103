"""The words of one `todo` command and the scanner that walks them, applying the common options.

Rule: the common options (``--json``, ``--url``, ``--token``, ``--node``, ``--no-pager``,
``-h``/``--help``) may appear anywhere before the text; the first word of free text, or a ``--``
word, ends option parsing. One-shot words come from argv (the text is the remaining words joined
by one space); shell words come from one typed line (the text is the rest of the line as typed).

Pure: no I/O. Every mistake is an `ErrSyntaxInvalidArgs`.
"""

from __future__ import annotations

import re

import msgspec

from dtm.errors import ErrSyntaxInvalidArgs

_WORD = re.compile(r"\S+")
_NODE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # = dtm.wire.NODE_NAME_PATTERN


class Words(msgspec.Struct, frozen=True):
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


class Options(msgspec.Struct, frozen=True):
    """The common options of one command."""

    json: bool = False
    url: str | None = None
    token: str | None = None
    node: str | None = None  # sent as X-Dtm-Node on every request of the command
    pager: bool = True  # False: --no-pager


class Scanner(msgspec.Struct):
    """Walks the words after the command word, applying options until the text begins."""

    words: Words
    i: int
    name: str
    in_shell: bool
    textual: bool = False  # the command takes free text (a dash word there may be text)
    literal: bool = False  # after `--`: no more options
    help: bool = False
    version: bool = False
    json: bool = False
    url: str | None = None
    token: str | None = None
    node: str | None = None
    no_pager: bool = False

    def options(self) -> Options:
        return Options(self.json, self.url, self.token, self.node, not self.no_pager)

    def option(self, word: str) -> bool:
        """Apply ``word`` if it is a common option; False if the caller must handle it."""
        if word == "--json":
            self.json = True
        elif word == "--no-pager":
            self.no_pager = True
        elif word in ("-h", "--help"):
            self.help = True
        elif word in ("-V", "--version") and not self.name:
            self.version = True
        elif self.is_flag(word, "--url"):
            self.url = self.start_up_value(word, "--url", "http://host:7400")
        elif self.is_flag(word, "--token"):
            self.token = self.start_up_value(word, "--token", "dtmu_…")
        elif self.is_flag(word, "--node"):
            node = self.value(word, "--node", "store1")
            if not _NODE_NAME.fullmatch(node):
                raise ErrSyntaxInvalidArgs(
                    f"--node {node[:40]!r} is not a node name (letters, digits, _ and -)"
                )
            self.node = node
        else:
            return False
        return True

    @staticmethod
    def is_flag(word: str, flag: str) -> bool:
        return word == flag or word.startswith(flag + "=")

    def start_up_value(self, word: str, flag: str, example: str) -> str:
        if self.in_shell:
            raise ErrSyntaxInvalidArgs(f"{flag} can only be given when the shell starts")
        return self.value(word, flag, example)

    def value(self, word: str, flag: str, example: str) -> str:
        """The value of option ``flag`` given as ``word`` (``flag=V`` or ``flag V``)."""
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
        hint = " (put -- before text that begins with a dash)" if self.textual else ""
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
            if any(self.is_flag(word, f) for f in flags):
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
