"""`todo completion bash|zsh|fish`: an installable Tab-completion script, made from the table.

Rule: the scripts complete the one-shot command words, each command's own options and fixed
words, and task IDs (asking ``todo list --ids`` when an ID is wanted); everything they know
comes from dtm.cli.table, so a new command completes without touching this file.
"""

from __future__ import annotations

from dtm.cli.table import TABLE, Spec, arg_words, available, command_words

GLOBAL = ("--json", "--url", "--token", "--node", "--no-pager", "--help", "--version")
_VALUED = "--url|--token|--node"
_BASH_IDS = "$(todo list --ids 2>/dev/null)"
_ZSH_IDS = '${(f)"$(todo list --ids 2>/dev/null)"}'


def _specs() -> list[Spec]:
    return [s for s in TABLE if available(s, in_shell=False)]


def _bash() -> str:
    cases = []
    for s in _specs():
        words = " ".join((*arg_words(s), *s.flags, "--help"))
        if s.args == "ids":
            cases.append(f'        {"|".join(s.words)}) words="{_BASH_IDS} {words}" ;;')
        elif s.args == "file":
            cases.append(
                f'        {"|".join(s.words)}) COMPREPLY=($(compgen -f -- "$cur")); return ;;'
            )
        else:
            cases.append(f'        {"|".join(s.words)}) words="{words}" ;;')
    return "\n".join(
        [
            "# todo completion for bash:",
            "#   todo completion bash > ~/.local/share/bash-completion/completions/todo",
            "_todo() {",
            '    local cur=${COMP_WORDS[COMP_CWORD]} cmd="" i words=""',
            "    for ((i = 1; i < COMP_CWORD; i++)); do",
            "        case ${COMP_WORDS[i]} in",
            f"            {_VALUED}) ((i++)) ;;",
            "            -*) ;;",
            "            *) cmd=${COMP_WORDS[i]}; break ;;",
            "        esac",
            "    done",
            "    case $cmd in",
            f'        "") words="{" ".join((*command_words(False), *GLOBAL))}" ;;',
            *cases,
            "    esac",
            '    COMPREPLY=($(compgen -W "$words" -- "$cur"))',
            "}",
            "complete -F _todo todo",
        ]
    )


def _zsh() -> str:
    cases = []
    for s in _specs():
        words = " ".join((*arg_words(s), *s.flags, "--help"))
        if s.args == "ids":
            cases.append(f"    {'|'.join(s.words)}) compadd -- {_ZSH_IDS} {words} ;;")
        elif s.args == "file":
            cases.append(f"    {'|'.join(s.words)}) _files ;;")
        else:
            cases.append(f"    {'|'.join(s.words)}) compadd -- {words} ;;")
    return "\n".join(
        [
            "#compdef todo",
            "# todo completion for zsh: todo completion zsh > ~/.zfunc/_todo",
            "# (with fpath+=(~/.zfunc) before compinit in ~/.zshrc)",
            'local cmd="" i',
            "for ((i = 2; i < CURRENT; i++)); do",
            "  case ${words[i]} in",
            f"    {_VALUED}) ((i++)) ;;",
            "    -*) ;;",
            "    *) cmd=${words[i]}; break ;;",
            "  esac",
            "done",
            "case $cmd in",
            f'  "") compadd -- {" ".join((*command_words(False), *GLOBAL))} ;;',
            *("  " + c.strip() for c in cases),
            "esac",
        ]
    )


def _fish() -> str:
    lines = [
        "# todo completion for fish: todo completion fish > ~/.config/fish/completions/todo.fish",
        "complete -c todo -f",
        f"complete -c todo -n __fish_use_subcommand -a '{' '.join(command_words(False))}'",
    ]
    lines += [f"complete -c todo -l {g[2:]}" for g in GLOBAL]
    for s in _specs():
        when = f"-n '__fish_seen_subcommand_from {' '.join(s.words)}'"
        if s.args == "ids":
            lines.append(f"complete -c todo {when} -a '(todo list --ids 2>/dev/null)'")
        elif s.args == "file":
            lines.append(f"complete -c todo {when} -F")
        elif arg_words(s):
            lines.append(f"complete -c todo {when} -a '{' '.join(arg_words(s))}'")
        lines += [f"complete -c todo {when} -l {f[2:]}" for f in s.flags]
    return "\n".join(lines)


def script(shell: str) -> str:
    return {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell]()
