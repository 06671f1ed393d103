"""The command table: every `todo` command once, with its words, parser, help and completion.

Rule: adding a command is one `Spec` in `TABLE` (its parser next to it); the grammar, the help
texts, the shell's Tab completion and the bash/zsh/fish completion scripts all read this table
and nothing else. A `cluster` view is one entry of `CLUSTER_VIEWS` (a module with
``show(args) -> str``).

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Literal

from dtm.cli.parsed import Clear as ClearScreen
from dtm.cli.parsed import (
    ClusterView,
    Command,
    Completion,
    Create,
    Delete,
    Exit,
    Export,
    Help,
    Import,
    ListTasks,
    SessionReset,
    Shell,
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
# `todo cluster <view>`: the module that renders it (``show(args: list[str]) -> str``).
CLUSTER_VIEWS: dict[str, str] = {"status": "dtm.cli.cluster_status"}
_SOME_DAY = date(2000, 1, 1)  # due words are checked at parse time, resolved when run

Args = Literal["none", "ids", "text", "words", "shells", "file", "views", "commands", "session"]
Where = Literal["both", "shell", "one-shot"]


@dataclass(frozen=True, slots=True)
class Spec:
    """One command."""

    name: str
    aliases: tuple[str, ...]
    usage: tuple[str, ...]
    summary: str
    parse: Callable[[Scanner], Command]
    details: str = ""
    flags: tuple[str, ...] = ()  # its own options, for completion
    args: Args = "none"  # what its positional words are, for completion
    where: Where = "both"
    json: bool = True  # --json applies
    textual: bool = False  # takes free text: a dash word there may be text

    @property
    def words(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


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


@dataclass(slots=True)
class _Fields:
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


def _parse_create(sc: Scanner) -> Command:
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


def _parse_list(sc: Scanner) -> Command:
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


def _parse_show(sc: Scanner) -> Command:
    return ShowTask(_refs(sc))


def _parse_update(sc: Scanner) -> Command:
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


def _parse_edit(sc: Scanner) -> Command:
    nxt = sc.next(flags=("--due", "--no-tags"))
    if nxt is None or nxt[1].startswith("-"):
        raise ErrSyntaxInvalidArgs("edit needs a task ID")
    ref = normalize_ref(nxt[1])
    f = _text_fields(sc, edit=True)
    if f.text is None and f.due is None and f.tags is None:
        raise ErrSyntaxInvalidArgs("edit needs the new text, --due, +tags or --no-tags")
    return Update((ref,), None, f.text, f.due, f.tags)


def _parse_status(status: Status) -> Callable[[Scanner], Command]:
    def parse(sc: Scanner) -> Command:
        return Update(_refs(sc), status)

    return parse


def _parse_delete(sc: Scanner) -> Command:
    return Delete(_refs(sc))


def _parse_help(sc: Scanner) -> Command:
    nxt = sc.next()
    if nxt is None:
        return Help()
    spec = BY_WORD.get(nxt[1].lower())
    if spec is None:
        raise unknown_command(nxt[1], sc.in_shell)
    sc.finish()
    return Help(spec.name)


def _parse_bare(make: Callable[[], Command]) -> Callable[[Scanner], Command]:
    def parse(sc: Scanner) -> Command:
        sc.finish()
        return make()

    return parse


def _parse_completion(sc: Scanner) -> Command:
    nxt = sc.next()
    if nxt is None or nxt[1] not in SHELLS:
        got = f", not {nxt[1]!r}" if nxt is not None else ""
        raise ErrSyntaxInvalidArgs(f"completion needs a shell: {', '.join(SHELLS)}{got}")
    sc.finish()
    return Completion(nxt[1])


def _parse_import(sc: Scanner) -> Command:
    nxt = sc.next()
    if nxt is None:
        raise ErrSyntaxInvalidArgs("import needs a file (written by todo export; - reads stdin)")
    sc.finish()
    return Import(nxt[1])


def _parse_session(sc: Scanner) -> Command:
    nxt = sc.next()
    if nxt is None or nxt[1] != "reset":
        raise ErrSyntaxInvalidArgs("session needs a subcommand: reset")
    sc.finish()
    return SessionReset()


def _parse_cluster(sc: Scanner) -> Command:
    """`cluster <view> [args…]`: the words after the view go to the view's own parser."""
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


# ---------------------------------------------------------------- the table

_IDS = "<id> is a task's full ID or any unique prefix of 4 or more characters."

TABLE: tuple[Spec, ...] = (
    Spec(
        "create",
        ("add",),
        ("add <text…> [+tag…] [--due DATE]", "create <text…>"),
        "add a task; prints its ID",
        _parse_create,
        "All remaining words are the text, so no quotes are needed: add Buy groceries.\n"
        "+word words are tags (add Buy milk +shop); --due DATE sets a due date: 2026-12-31,\n"
        "today, tomorrow, +3d or +2w. Put -- before text that begins with a dash (or that\n"
        "holds a +word or --due meant as text). On a terminal it prints\n"
        "'Created <id>  <text>'; piped, just the full ID (id=$(todo add …) works).\n"
        "The text is 1-1000 characters without tabs, newlines or other control characters.",
        flags=("--due",),
        args="text",
        textual=True,
    ),
    Spec(
        "list",
        ("ls",),
        (
            "list [words…] [+tag…] [--open|--completed|--all] [--limit N]",
            "list [--sort created|due|text] [--due-before DATE] [--ids]",
        ),
        "show the tasks (open, then completed); filter and sort them",
        _parse_list,
        "Words are a search: every word must appear in the text (case ignored); every\n"
        "+tag must be one of the task's tags. --open or --completed shows one section;\n"
        "--limit N shows at most N of each; --due-before DATE only tasks due before it;\n"
        "--sort orders each section by creation (the default), due date or text; --ids\n"
        "prints only the full IDs, one per line. Overdue tasks are marked 'overdue'.\n"
        "Each task is shown with its short ID: the fewest characters (at least 4) that\n"
        "no other listed task shares. On a terminal a list taller than the screen goes\n"
        "through $PAGER (less by default; --no-pager prints it directly).",
        flags=("--open", "--completed", "--all", "--limit", "--sort", "--due-before", "--ids"),
        args="words",
    ),
    Spec(
        "show",
        (),
        ("show <id>…",),
        "show every field of tasks",
        _parse_show,
        flags=(),
        args="ids",
    ),
    Spec(
        "done",
        (),
        ("done <id>…",),
        "mark tasks complete (same as update <id>… complete)",
        _parse_status("complete"),
        args="ids",
    ),
    Spec(
        "reopen",
        (),
        ("reopen <id>…",),
        "mark tasks open again (same as update <id>… open)",
        _parse_status("open"),
        args="ids",
    ),
    Spec(
        "update",
        (),
        (
            "update <id>… complete|open",
            "update <id>… [--due DATE|none] [+tag…] [--no-tags]",
            "update <id> --text <text…>",
        ),
        "change the status, text, due date or tags of tasks",
        _parse_update,
        "A status and --text may be given together: update 7k3m complete --text Done.\n"
        "+tag words replace the task's tags; --no-tags removes them; --due none removes\n"
        "the due date. Several IDs get the same change, each reported.",
        flags=("--text", "--status", "--due", "--no-tags"),
        args="ids",
        textual=True,
    ),
    Spec(
        "edit",
        (),
        ("edit <id> [<text…>] [+tag…] [--due DATE|none] [--no-tags]",),
        "change a task's text, tags or due date",
        _parse_edit,
        "edit 7k3m Buy oat milk +shop --due tomorrow: the new text, tags and due date;\n"
        "what is not given stays as it was (+tag words replace the tags).",
        flags=("--due", "--no-tags"),
        args="ids",
        textual=True,
    ),
    Spec(
        "delete",
        ("rm",),
        ("delete <id>…", "rm <id>…"),
        "delete tasks",
        _parse_delete,
        args="ids",
    ),
    Spec(
        "export",
        (),
        ("export",),
        "print every task as JSON, one per line (every field)",
        _parse_bare(Export),
        "todo export > tasks.jsonl keeps a copy; todo import tasks.jsonl brings it back.",
        json=False,
    ),
    Spec(
        "import",
        (),
        ("import <file>",),
        "add the tasks of an export file (idempotent by ID)",
        _parse_import,
        "A task whose ID is not there is created under that ID; one that is there is\n"
        "changed to match the file, so importing twice changes nothing. The whole file\n"
        "is checked first: a malformed line changes nothing and is named. - reads stdin.",
        args="file",
    ),
    Spec(
        "completion",
        (),
        ("completion bash|zsh|fish",),
        "print a Tab-completion script for a shell",
        _parse_completion,
        "bash: todo completion bash > ~/.local/share/bash-completion/completions/todo\n"
        "zsh:  todo completion zsh > ~/.zfunc/_todo  (with fpath+=(~/.zfunc) before compinit)\n"
        "fish: todo completion fish > ~/.config/fish/completions/todo.fish",
        args="shells",
        where="one-shot",
        json=False,
    ),
    Spec(
        "session",
        (),
        ("session reset",),
        "forget the session token kept for this request handler",
        _parse_session,
        "The CLI keeps the newest versions it has read or written (the session token) so the\n"
        "next command never reads older data. After the cluster was wiped and made again,\n"
        "that token asks for versions that no longer exist: session reset forgets it.",
        args="session",
        json=False,
    ),
    Spec(
        "help",
        (),
        ("help [command]",),
        "describe the commands (also --help on any command)",
        _parse_help,
        args="commands",
        json=False,
    ),
    Spec(
        "shell",
        (),
        ("shell",),
        "the interactive shell (also: todo with no arguments)",
        _parse_bare(Shell),
        "Takes the same commands, one per line, without the word todo. On a terminal it\n"
        "keeps a history and completes command words and task IDs with Tab; Ctrl-C stops\n"
        "the command in flight, Ctrl-D or exit leaves (status 0). With input from a pipe\n"
        "it runs one command per line and ends at the end of the input; its exit status\n"
        "is that of the last command it ran.",
        where="one-shot",
        json=False,
    ),
    Spec(
        "cluster",
        (),
        tuple(f"cluster {v}" for v in CLUSTER_VIEWS),
        "the sync process's view of the cluster",
        _parse_cluster,
        "Options: --url URL (the sync process) or --config FILE (a cluster file).\n"
        "Reads the sync process's /v1/status at --url, else at the [sync] address of the\n"
        "cluster file --config, else at $DTM_SYNC_URL, else at http://127.0.0.1:7420.\n"
        "Text only (no --json). It changes nothing.",
        args="views",
        json=False,
    ),
    Spec("clear", (), ("clear",), "clear the screen", _parse_bare(ClearScreen), where="shell"),
    Spec(
        "exit",
        ("quit",),
        ("exit", "quit"),
        "leave the shell (Ctrl-D does too)",
        _parse_bare(Exit),
        where="shell",
        json=False,
    ),
)

BY_NAME: dict[str, Spec] = {s.name: s for s in TABLE}
BY_WORD: dict[str, Spec] = {w: s for s in TABLE for w in s.words}


def available(spec: Spec, in_shell: bool) -> bool:
    return spec.where == "both" or spec.where == ("shell" if in_shell else "one-shot")


def command_words(in_shell: bool) -> list[str]:
    """Every word that names a command where the grammar is used (for help and completion)."""
    return sorted(w for s in TABLE if available(s, in_shell) for w in s.words)


def arg_words(spec: Spec) -> tuple[str, ...]:
    """The fixed words a command's positional arguments may be (for completion)."""
    if spec.args == "shells":
        return SHELLS
    if spec.args == "views":
        return tuple(CLUSTER_VIEWS)
    if spec.args == "session":
        return ("reset",)
    return ()


def unknown_command(word: str, in_shell: bool) -> ErrSyntaxInvalidArgs:
    import difflib

    close = difflib.get_close_matches(word.lower(), command_words(in_shell), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    where = "help" if in_shell else "todo help"
    shown = word if len(word) <= 30 else word[:30] + "…"
    return ErrSyntaxInvalidArgs(f"unknown command {shown!r} ({hint}try '{where}')")
