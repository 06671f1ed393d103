"""Help and README keep their promises: every option a help text shows is one the command takes,
no developer docstring reaches a --help, the README's exit-code table and recorded session agree
with the code, and the session puts `todo` on PATH before it calls it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from dtm.cli.grammar import Help, Invalid, Words, parse
from dtm.cli.helptext import exit_code_rows, help_text
from dtm.cli.table import TABLE, available

README = Path(__file__).resolve().parents[2] / "README.md"
DOCSTRING_MARKS = ("Rule:", "``", "`show`", "Pure:")
VALUES = {"--url": "http://h:1", "--token": "dtmu_x", "--node": "store1", "--due": "today"}
VALUES |= {
    "--limit": "3",
    "--sort": "due",
    "--due-before": "+3d",
    "--text": "x",
    "--status": "open",
}


def _options(text: str) -> list[str]:
    return sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", text)))


@pytest.mark.parametrize("spec", [s for s in TABLE if s.name != "cluster"], ids=lambda s: s.name)
def test_every_option_a_help_shows_is_taken(spec: object) -> None:
    from dtm.cli.table import Spec

    assert isinstance(spec, Spec)
    in_shell = not available(spec, in_shell=False)
    text = help_text(spec.name, in_shell=in_shell)
    example = {"create": ["x"], "import": ["f"], "completion": ["bash"], "session": ["reset"]}
    ids = ["abcd"] if spec.args == "ids" else []
    for opt in _options(text):
        if opt in ("--help",):
            continue
        words = [spec.name, *ids, *example.get(spec.name, [])]
        words += [opt, VALUES[opt]] if opt in VALUES else [opt]
        if spec.name == "update" and opt not in ("--text", "--status", "--due", "--no-tags"):
            words.append("open")
        if spec.name == "edit" and opt in ("--json", "--node", "--url", "--token"):
            words.append("new text")
        inv = parse(
            Words.from_argv(words) if not in_shell else Words.from_line(" ".join(words)),
            in_shell=in_shell,
        )
        assert not isinstance(inv.command, Invalid), (spec.name, opt, inv.command)
        assert not isinstance(inv.command, Help), (spec.name, opt)


def test_help_of_help_offers_no_json() -> None:
    assert "--json" not in help_text("help", in_shell=False)


def test_no_developer_docstring_in_any_help() -> None:
    texts = [help_text(None, False), help_text(None, True)]
    texts += [help_text(s.name, False) for s in TABLE]
    for argv in (["dtm", "--help"], ["todo", "cluster", "status", "--help"]):
        module = "dtm.run" if argv[0] == "dtm" else "dtm.cli.main"
        proc = subprocess.run(
            [sys.executable, "-m", module, *argv[1:]], capture_output=True, text=True, timeout=30
        )
        assert proc.returncode == 0, proc
        texts.append(proc.stdout)
    for text in texts:
        for mark in DOCSTRING_MARKS:
            assert mark not in text, (mark, text[:200])


def _session() -> str:
    text = README.read_text()
    return text.split("## Using it", 1)[1].split("```console", 1)[1].split("```", 1)[0]


def test_the_readme_lists_every_exit_code() -> None:
    text = README.read_text()
    for code, names in exit_code_rows():
        assert f"| {code} | {names} |" in text
    assert "ErrPayloadTooLarge" in text


def test_the_recorded_session_puts_todo_on_path_and_sets_no_literal_address() -> None:
    commands = [ln[2:] for ln in _session().splitlines() if ln.startswith("$ ")]
    first_todo = next(i for i, c in enumerate(commands) if c.startswith("todo "))
    assert any("PATH=" in c and ".venv/bin" in c for c in commands[:first_todo])
    for c in commands:
        if c.startswith("export TODO_URL="):
            assert "$(dtm cluster url" in c, c  # from the cluster file, never a stale port


def test_every_todo_command_of_the_session_parses() -> None:
    for c in (ln[2:] for ln in _session().splitlines() if ln.startswith("$ ")):
        if not c.startswith("todo "):
            continue
        argv = c.split(";")[0].split(">")[0].split()[1:]
        argv = [w.strip("'") for w in argv]
        if "done" in argv and "update" in argv:  # the session shows this mistake on purpose
            continue
        assert not isinstance(parse(Words.from_argv(argv)).command, Invalid), c


def test_readme_gives_the_test_suites_duration() -> None:
    assert re.search(r"make test\s+#.*about \d+ minutes", README.read_text())
