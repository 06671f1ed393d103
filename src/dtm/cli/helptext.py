"""The help texts of `todo` and of its shell (the same commands; the shell drops ``todo``).

Rule: one entry per command (usage, one-line summary, details); the overview lists them all and
the exit codes, read from the error tree so they can never disagree with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from dtm.errors import ALL_ERRORS


@dataclass(frozen=True, slots=True)
class Entry:
    usage: tuple[str, ...]
    summary: str
    details: str = ""
    common_options: bool = True  # --json and --help apply


ENTRIES: dict[str, Entry] = {
    "create": Entry(
        ("create <text…>", "add <text…>"),
        "add a task; prints its ID",
        "All remaining words are the text, so no quotes are needed: add Buy groceries.\n"
        "Put -- before text that begins with a dash. On a terminal it prints\n"
        "'Created <id>  <text>'; piped, just the full ID (id=$(todo add …) works).\n"
        "The text is 1-1000 characters without tabs, newlines or other control characters.",
    ),
    "list": Entry(
        ("list", "ls"),
        "show the open and the completed tasks",
        "Each task is shown with its short ID: the fewest characters (at least 4) that\n"
        "no other listed task shares. Any unique prefix of 4 or more characters works\n"
        "wherever an <id> is asked for.",
    ),
    "update": Entry(
        ("update <id> complete|open", "update <id> --text <text…>"),
        "mark a task complete or open, or change its text",
        "A status and --text may be given together: update 7k3m complete --text Done.",
    ),
    "edit": Entry(("edit <id> <text…>",), "change a task's text (same as update <id> --text)"),
    "delete": Entry(("delete <id>", "rm <id>"), "delete a task"),
    "help": Entry(("help [command]",), "describe the commands (also --help on any command)"),
    "shell": Entry(
        ("shell",),
        "the interactive shell (also: todo with no arguments)",
        "Takes the same commands, one per line, without the word todo. On a terminal it\n"
        "keeps a history and completes command words and task IDs with Tab. With input\n"
        "from a pipe it runs one command per line and ends at the end of the input; its\n"
        "exit status is that of the last command it ran.",
    ),
    "cluster": Entry(
        (
            "cluster status [--watch]",
            "cluster conflicts [--limit N]",
            "cluster inspect <id>",
        ),
        "the cluster as the sync and the data nodes see it",
        "status: every node (health, epoch, version, rows, tombstones, clock offset) and\n"
        "every sync pair (cursor, lag); --watch redraws it until Ctrl-C.\n"
        "conflicts: the newest conflicts, winner and loser, and what was lost.\n"
        "inspect: one task's row on every node, and whether they all have it yet.\n"
        "Options: --url URL (the sync process) or --config FILE (a cluster file), --json.\n"
        "Reads the sync process's /v1/status at --url, else at the [sync] address of the\n"
        "cluster file --config, else at $DTM_SYNC_URL, else at the [sync] address of\n"
        "./run/cluster.toml, else at http://127.0.0.1:7420, with the cluster credential.\n"
        "It changes nothing.",
        common_options=False,
    ),
    "exit": Entry(("exit", "quit"), "leave the shell (Ctrl-D does too)"),
}

_SHELL_ONLY = frozenset({"exit"})
_ONE_SHOT_ONLY = frozenset({"shell"})


def exit_codes() -> str:
    codes = sorted({(e.exit_code, e.name) for e in ALL_ERRORS if e.name != "ErrPayloadTooLarge"})
    return ", ".join(f"{code} {name}" for code, name in codes)


def _usage_lines(entry: Entry, prog: str) -> list[str]:
    return [f"{prog}{u}" for u in entry.usage]


def overview(in_shell: bool) -> str:
    prog = "" if in_shell else "todo "
    hidden = _ONE_SHOT_ONLY if in_shell else _SHELL_ONLY
    rows = []
    for name, entry in ENTRIES.items():
        if name in hidden:
            continue
        rows.append((entry.usage[0], entry.summary))
        rows += [(u, "") for u in entry.usage[1:]]
    width = max(len(u) for u, _ in rows)
    lines = (
        ["Commands (in the shell, type them without 'todo'):"] if not in_shell else ["Commands:"]
    )
    lines += [f"  {prog}{u.ljust(width)}  {s}".rstrip() for u, s in rows]
    lines += [
        "",
        "<id> is a task's full ID or any unique prefix of 4 or more characters.",
        "",
        "Options (anywhere before the text):",
        '  --json        print JSON: the task; {"open": […], "complete": […]};',
        '                {"id", "deleted": true}; errors as {"error", "message"} on stderr',
    ]
    if not in_shell:
        lines = [
            "todo - a TODO list kept in a small distributed key-value store",
            "",
            "Usage: todo [--url URL] [--token TOKEN] [--json] <command> [arguments]",
            "       todo                 (no command: the interactive shell)",
            "",
            *lines,
            "  --url URL     the request handler; else $TODO_URL, else url in",
            "                $XDG_CONFIG_HOME/dtm/config.toml, else http://127.0.0.1:7400",
            "  --token TOKEN your user token; else $TODO_TOKEN, else token (or token_file)",
            "                in $XDG_CONFIG_HOME/dtm/config.toml, else the file",
            "                $XDG_CONFIG_HOME/dtm/local.token that `make up` writes.",
            "                A token comes from `dtm user add NAME` (exit 8: no valid token)",
        ]
    lines += ["  -h, --help    show help", "", f"Exit codes: 0 ok, {exit_codes()}."]
    return "\n".join(lines)


def help_text(topic: str | None, in_shell: bool) -> str:
    """The overview, or one command's usage and details."""
    if topic is None or topic not in ENTRIES:
        return overview(in_shell)
    entry = ENTRIES[topic]
    prog = "" if in_shell else "todo "
    summary = entry.summary[0].upper() + entry.summary[1:] + "."
    lines = ["Usage: " + "\n       ".join(_usage_lines(entry, prog)), "", summary]
    if entry.details:
        lines += ["", entry.details]
    if entry.common_options:
        lines += ["", "Options: --json (print JSON), -h/--help (this help)."]
    return "\n".join(lines)
