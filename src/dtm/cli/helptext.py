"""The help texts of `todo` and of its shell (the same commands; the shell drops ``todo``).

Rule: every text is made from the command table (dtm.cli.table) and the error tree
(dtm.errors), so help can never disagree with what the commands accept or the codes they exit
with; an option is shown only where it does something.
"""

from __future__ import annotations

from dtm.cli.table import BY_NAME, TABLE, Spec, available
from dtm.errors import ALL_ERRORS, EXIT_BROKEN_PIPE, EXIT_INTERRUPTED


def exit_code_rows() -> list[tuple[int, str]]:
    """(code, error names) for every exit code, 0 first."""
    by_code: dict[int, list[str]] = {}
    for e in ALL_ERRORS:
        by_code.setdefault(e.exit_code, []).append(e.name)
    rows = [(0, "success")]
    rows += [(code, ", ".join(sorted(names))) for code, names in sorted(by_code.items())]
    return [
        *rows,
        (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
        (EXIT_BROKEN_PIPE, "stdout was closed early"),
    ]


def exit_codes() -> str:
    return "\n".join(f"  {code:>3}  {names}" for code, names in exit_code_rows())


def _common(spec: Spec | None, in_shell: bool) -> list[str]:
    if spec is not None and spec.name in ("cluster", "help", "completion", "exit", "clear"):
        return ["  -h, --help      show help"]
    lines = []
    if spec is None or spec.json:
        lines += [
            '  --json          print JSON: the task; {"open": […], "complete": […]};',
            '                  {"id", "deleted": true}; errors as {"error", "message"} on stderr',
        ]
    if not in_shell and (spec is None or spec.where != "shell"):
        lines += [
            "  --url URL       the request handler, or several: URL,URL,... (the next is tried",
            "                  when one does not answer); else $TODO_URL, else url in",
            "                  $XDG_CONFIG_HOME/dtm/config.toml, else http://127.0.0.1:7400",
            "  --token TOKEN   your user token; else $TODO_TOKEN, else token (or token_file)",
            "                  in $XDG_CONFIG_HOME/dtm/config.toml, else the file",
            "                  $XDG_CONFIG_HOME/dtm/local.token that `make up` writes.",
            "                  A token comes from `dtm user add NAME` (exit 8: no valid token)",
        ]
    if spec is None or spec.args in ("ids", "text", "words") or spec.name == "import":
        lines += ["  --node NAME     ask the request handler to use data node NAME"]
    if spec is None or spec.name == "list":
        lines += ["  --no-pager      never send a long list through $PAGER"]
    if spec is None and not in_shell:
        lines += ["  -V, --version   print the version"]
    lines += ["  -h, --help      show help"]
    return lines


def overview(in_shell: bool) -> str:
    prog = "" if in_shell else "todo "
    rows = []
    for spec in TABLE:
        if not available(spec, in_shell):
            continue
        rows.append((spec.usage[0], spec.summary))
        rows += [(u, "") for u in spec.usage[1:]]
    width = min(max(len(u) for u, _ in rows), 32)
    lines = ["Commands (in the shell, type them without 'todo'):" if not in_shell else "Commands:"]
    for u, s in rows:
        if len(u) > width and s:
            lines += [f"  {prog}{u}", f"  {' ' * (len(prog) + width)}  {s}"]
        else:
            lines.append(f"  {prog}{u.ljust(width)}  {s}".rstrip())
    lines += [
        "",
        "<id> is a task's full ID or any unique prefix of 4 or more characters.",
        "DATE is 2026-12-31, today, tomorrow, +3d or +2w.",
        "",
        "Options (anywhere before the text):",
        *_common(None, in_shell),
        "",
        "Exit codes:",
        exit_codes(),
    ]
    if not in_shell:
        lines = [
            "todo - a TODO list kept in a small distributed key-value store",
            "",
            "Usage: todo [options] <command> [arguments]",
            "       todo                 (no command: the interactive shell)",
            "",
            *lines,
        ]
    return "\n".join(lines)


def help_text(topic: str | None, in_shell: bool) -> str:
    """The overview, or one command's usage, details and options."""
    spec = BY_NAME.get(topic or "")
    if spec is None:
        return overview(in_shell)
    prog = "" if in_shell else "todo "
    summary = spec.summary[0].upper() + spec.summary[1:] + "."
    lines = ["Usage: " + "\n       ".join(f"{prog}{u}" for u in spec.usage), "", summary]
    if spec.details:
        lines += ["", spec.details]
    lines += ["", "Options:", *_common(spec, in_shell)]
    return "\n".join(lines)
