"""The command table: every `todo` command once, with its words, parser, help and completion.

Rule: adding a command is one `Spec` in `TABLE` (its parser in dtm.cli.parsers); the grammar,
the help texts, the shell's Tab completion and the bash/zsh/fish completion scripts all read this
table and nothing else. A `cluster` view is one entry of `CLUSTER_VIEWS` (a module with
``show(args) -> str``).

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import msgspec

from dtm.cli import parsers as p
from dtm.cli.parsed import Clear as ClearScreen
from dtm.cli.parsed import Command, Exit, Export, Shell
from dtm.cli.parsers import SHELLS, STATUSES
from dtm.cli.scan import Scanner
from dtm.errors import ErrSyntaxInvalidArgs

__all__ = ["CLUSTER_VIEWS", "SHELLS", "STATUSES", "TABLE", "Spec"]

# `todo cluster <view>`: the module that prints it
# (``main(view, args, json, out) -> exit code``).
CLUSTER_VIEWS: dict[str, str] = {
    "status": "dtm.cli.cluster_status",
    "conflicts": "dtm.cli.cluster_status",
    "inspect": "dtm.cli.cluster_status",
}

Args = Literal["none", "ids", "text", "words", "shells", "file", "views", "commands", "session"]
Where = Literal["both", "shell", "one-shot"]


class Spec(msgspec.Struct, frozen=True):
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


# ---------------------------------------------------------------- the table

_IDS = "<id> is a task's full ID or any unique prefix of 4 or more characters."

TABLE: tuple[Spec, ...] = (
    Spec(
        "create",
        ("add",),
        ("add <text…> [+tag…] [--due DATE]", "create <text…>"),
        "add a task; prints its ID",
        p.parse_create,
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
        p.parse_list,
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
        p.parse_show,
        flags=(),
        args="ids",
    ),
    Spec(
        "done",
        (),
        ("done <id>…",),
        "mark tasks complete (same as update <id>… complete)",
        p.parse_status("complete"),
        args="ids",
    ),
    Spec(
        "reopen",
        (),
        ("reopen <id>…",),
        "mark tasks open again (same as update <id>… open)",
        p.parse_status("open"),
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
        p.parse_update,
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
        p.parse_edit,
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
        p.parse_delete,
        args="ids",
    ),
    Spec(
        "export",
        (),
        ("export",),
        "print every task as JSON, one per line (every field)",
        p.parse_bare(Export),
        "todo export > tasks.jsonl keeps a copy; todo import tasks.jsonl brings it back.",
        json=False,
    ),
    Spec(
        "import",
        (),
        ("import <file>",),
        "add the tasks of an export file (idempotent by ID)",
        p.parse_import,
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
        p.parse_completion,
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
        p.parse_session,
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
        p.parse_help,
        args="commands",
        json=False,
    ),
    Spec(
        "shell",
        (),
        ("shell",),
        "the interactive shell (also: todo with no arguments)",
        p.parse_bare(Shell),
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
        (
            "cluster status [--watch]",
            "cluster conflicts [--limit N]",
            "cluster inspect <id>",
        ),
        "the cluster as the sync and the data nodes see it",
        p.parse_cluster,
        "status: every node (health, epoch, version, rows, tombstones, clock offset) and\n"
        "every sync pair (cursor, lag); --watch redraws it until Ctrl-C.\n"
        "conflicts: the newest conflicts, winner and loser, and what was lost.\n"
        "inspect: one task's row on every node, and whether they all have it yet.\n"
        "Options: --url URL (the sync process) or --config FILE (a cluster file), --json.\n"
        "Reads the sync process's /v1/status at --url, else at the [sync] address of the\n"
        "cluster file --config, else at $DTM_SYNC_URL, else at the [sync] address of\n"
        "./run/cluster.toml, else at http://127.0.0.1:7420, with the cluster credential.\n"
        "It changes nothing.",
        args="views",
    ),
    Spec("clear", (), ("clear",), "clear the screen", p.parse_bare(ClearScreen), where="shell"),
    Spec(
        "exit",
        ("quit",),
        ("exit", "quit"),
        "leave the shell (Ctrl-D does too)",
        p.parse_bare(Exit),
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
