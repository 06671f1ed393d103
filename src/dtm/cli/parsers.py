"""The parsers of the `todo` commands: each reads the words after its command word.

Rule: a parser returns the parsed command (dtm.cli.parsed) or raises ErrSyntaxInvalidArgs saying
what is wrong; free text takes ``--due DATE`` and ``+tag`` words out of it up to a ``--`` word;
due words are checked here and resolved against today's date when the command runs.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import msgspec

from dtm.cli.parsed import (
    ClusterView,
    Command,
    Completion,
    Create,
    Delete,
    Help,
    Import,
    ListTasks,
    SessionReset,
    ShowTask,
    Update,
)
from dtm.cli.scan import Scanner
from dtm.core.tasks import (
    SORT_KEYS,
    Show,
    SortKey,
    Status,
    check_tags,
    check_text,
    is_tag_word,
    normalize_ref,
    parse_due,
)
from dtm.errors import ErrSyntaxInvalidArgs

STATUSES: tuple[Status, ...] = ("complete", "open")
# Words meant as a status that are also well-formed ID prefixes: refused, not looked up.
_NOT_STATUSES = frozenset({"done", "closed", "finished", "reopened", "todo", "undone"})
SHELLS = ("bash", "zsh", "fish")
_SOME_DAY = date(2000, 1, 1)  # due words are checked at parse time, resolved when run


# ---------------------------------------------------------------- value rules


def check_status(word: str) -> Status:
    for status in STATUSES:
        if word.lower() == status:
            return status
    raise ErrSyntaxInvalidArgs(f"invalid status {word!r}: use complete or open")


def check_due_word(word: str, clearable: bool = False) -> str:
    """A typed due date, checked (``none`` clears it where ``clearable``)."""
    if clearable and word.lower() == "none":
        return "none"
    parse_due(word, _SOME_DAY)
    return word


# ---------------------------------------------------------------- parsers


class _Fields(msgspec.Struct):
    text: str | None = None
    due: str | None = None
    tags: tuple[str, ...] | None = None


def _text_fields(sc: Scanner, edit: bool) -> _Fields:
    """Free text with ``--due D`` and ``+tag`` words anywhere in it (until a ``--`` word)."""
    out = _Fields()
    kept: list[str] = []
    first: int | None = None
    pulled = False  # a word was taken out of the text
    tags: list[str] = []
    while sc.i < len(sc.words):
        at, w = sc.i, sc.words.items[sc.i]
        sc.i += 1
        if not sc.literal:
            if w == "--":
                sc.literal = True
                if first is None:
                    continue
            elif sc.is_flag(w, "--due"):
                out.due = check_due_word(sc.value(w, "--due", "tomorrow"), clearable=edit)
                pulled = True
                continue
            elif edit and w == "--no-tags":
                out.tags, pulled = (), True
                continue
            elif is_tag_word(w):
                tags.append(w)
                pulled = True
                continue
            elif first is None and w.startswith("-") and w != "-":
                if not sc.option(w):
                    raise sc.unknown(w)
                continue
        if first is None:
            first = at
        kept.append(w)
    if first is not None:
        out.text = check_text(" ".join(kept) if pulled else sc.rest(first))
    if tags:
        out.tags = tuple(check_tags(tags))
    return out


def parse_create(sc: Scanner) -> Command:
    f = _text_fields(sc, edit=False)
    if f.text is None:
        raise ErrSyntaxInvalidArgs(f"{sc.name} needs the task text")
    return Create(f.text, f.due, f.tags or ())


def _refs(sc: Scanner, at_least_one: bool = True) -> tuple[str, ...]:
    refs: list[str] = []
    while (nxt := sc.next()) is not None:
        refs.append(normalize_ref(nxt[1]))
    if at_least_one and not refs:
        raise ErrSyntaxInvalidArgs(f"{sc.name} needs a task ID (or several)")
    return tuple(refs)


def parse_list(sc: Scanner) -> Command:
    show: Show = "all"
    words: list[str] = []
    tags: list[str] = []
    due_before: str | None = None
    sort: SortKey = "created"
    limit: int | None = None
    ids = False
    shows: dict[str, Show] = {"--open": "open", "--completed": "complete", "--all": "all"}
    flags = (*shows, "--limit", "--sort", "--due-before", "--ids")
    while (nxt := sc.next(flags=flags)) is not None:
        _, w = nxt
        if w in shows and not sc.literal:
            show = shows[w]
        elif sc.is_flag(w, "--limit") and not sc.literal:
            raw = sc.value(w, "--limit", "20")
            if not raw.isdigit() or not 0 < int(raw) <= 1_000_000:
                raise ErrSyntaxInvalidArgs(f"--limit needs a positive number, not {raw!r}")
            limit = int(raw)
        elif sc.is_flag(w, "--sort") and not sc.literal:
            raw = sc.value(w, "--sort", "due").lower()
            if raw not in SORT_KEYS:
                raise ErrSyntaxInvalidArgs(f"--sort {raw!r}: use {', '.join(SORT_KEYS)}")
            sort = raw
        elif sc.is_flag(w, "--due-before") and not sc.literal:
            due_before = check_due_word(sc.value(w, "--due-before", "+7d"))
        elif w == "--ids" and not sc.literal:
            ids = True
        elif is_tag_word(w) and not sc.literal:
            tags.append(w)
        else:
            words.append(w)
    return ListTasks(show, tuple(words), tuple(check_tags(tags)), due_before, sort, limit, ids)


def parse_show(sc: Scanner) -> Command:
    return ShowTask(_refs(sc))


def parse_update(sc: Scanner) -> Command:
    refs: list[str] = []
    status: Status | None = None
    text: str | None = None
    due: str | None = None
    tags: tuple[str, ...] | None = None
    flags = ("--text", "--status", "--due", "--no-tags")
    while (nxt := sc.next(flags=flags)) is not None:
        at, word = nxt
        if sc.is_flag(word, "--text"):
            if word.startswith("--text="):
                text = check_text(sc.rest(at).removeprefix("--text="))
            else:
                f = _text_fields(sc, edit=True)
                if f.text is None:
                    raise ErrSyntaxInvalidArgs("--text needs the task text")
                text, due, tags = f.text, f.due or due, f.tags if f.tags is not None else tags
            break
        if sc.is_flag(word, "--due"):
            due = check_due_word(sc.value(word, "--due", "tomorrow"), clearable=True)
            continue
        if word == "--no-tags":
            tags = ()
            continue
        if is_tag_word(word):
            tags = (*(tags or ()), *check_tags([word]))
            continue
        if sc.is_flag(word, "--status"):
            word = sc.value(word, "--status", "complete")
        elif word.lower() not in STATUSES and (not refs or word.lower() not in _NOT_STATUSES):
            if status is not None or due is not None or tags is not None:
                raise ErrSyntaxInvalidArgs(
                    f"update takes the IDs first; got {word!r} after the changes"
                )
            refs.append(normalize_ref(word))
            continue
        if status is not None:
            raise ErrSyntaxInvalidArgs(
                f"update takes one status; got {word!r} after {status!r} "
                "(use --text to change the text)"
            )
        status = check_status(word)
    if not refs:
        raise ErrSyntaxInvalidArgs("update needs a task ID (or several)")
    if status is None and text is None and due is None and tags is None:
        raise ErrSyntaxInvalidArgs(
            "update needs a status (complete or open), --text <text>, --due or +tags"
        )
    return Update(tuple(refs), status, text, due, tags)


def parse_edit(sc: Scanner) -> Command:
    nxt = sc.next(flags=("--due", "--no-tags"))
    if nxt is None or nxt[1].startswith("-"):
        raise ErrSyntaxInvalidArgs("edit needs a task ID")
    ref = normalize_ref(nxt[1])
    f = _text_fields(sc, edit=True)
    if f.text is None and f.due is None and f.tags is None:
        raise ErrSyntaxInvalidArgs("edit needs the new text, --due, +tags or --no-tags")
    return Update((ref,), None, f.text, f.due, f.tags)


def parse_status(status: Status) -> Callable[[Scanner], Command]:
    def parse(sc: Scanner) -> Command:
        return Update(_refs(sc), status)

    return parse


def parse_delete(sc: Scanner) -> Command:
    return Delete(_refs(sc))


def parse_help(sc: Scanner) -> Command:
    from dtm.cli.table import BY_WORD, unknown_command

    nxt = sc.next()
    if nxt is None:
        return Help()
    spec = BY_WORD.get(nxt[1].lower())
    if spec is None:
        raise unknown_command(nxt[1], sc.in_shell)
    sc.finish()
    return Help(spec.name)


def parse_bare(make: Callable[[], Command]) -> Callable[[Scanner], Command]:
    def parse(sc: Scanner) -> Command:
        sc.finish()
        return make()

    return parse


def parse_completion(sc: Scanner) -> Command:
    nxt = sc.next()
    if nxt is None or nxt[1] not in SHELLS:
        got = f", not {nxt[1]!r}" if nxt is not None else ""
        raise ErrSyntaxInvalidArgs(f"completion needs a shell: {', '.join(SHELLS)}{got}")
    sc.finish()
    return Completion(nxt[1])


def parse_import(sc: Scanner) -> Command:
    nxt = sc.next()
    if nxt is None:
        raise ErrSyntaxInvalidArgs("import needs a file (written by todo export; - reads stdin)")
    sc.finish()
    return Import(nxt[1])


def parse_session(sc: Scanner) -> Command:
    nxt = sc.next()
    if nxt is None or nxt[1] != "reset":
        raise ErrSyntaxInvalidArgs("session needs a subcommand: reset")
    sc.finish()
    return SessionReset()


def parse_cluster(sc: Scanner) -> Command:
    """`cluster <view> [args…]`: the words after the view go to the view's own parser."""
    from dtm.cli.table import CLUSTER_VIEWS

    views = ", ".join(CLUSTER_VIEWS)
    if sc.i >= len(sc.words):
        raise ErrSyntaxInvalidArgs(f"cluster needs a subcommand: {views}")
    sub = sc.words.items[sc.i]
    if sub in ("-h", "--help"):
        return Help("cluster")
    if sub not in CLUSTER_VIEWS:
        raise ErrSyntaxInvalidArgs(f"unknown cluster subcommand {sub!r} (have: {views})")
    args = sc.words.items[sc.i + 1 :]
    sc.i = len(sc.words)
    if "-h" in args or "--help" in args:
        return Help("cluster")
    return ClusterView(sub, args)
