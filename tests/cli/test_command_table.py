"""One command table drives parsing, help and completion: a command added to it is parsed,
described and completed everywhere without touching another file; no unused dependency."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from dtm.cli import completion, helptext, table
from dtm.cli.grammar import Version, Words, parse
from dtm.cli.scan import Scanner
from dtm.cli.table import TABLE, Spec


def test_every_command_is_parsed_described_and_completed() -> None:
    top = helptext.help_text(None, in_shell=False)
    scripts = {s: completion.script(s) for s in ("bash", "zsh", "fish")}
    for spec in TABLE:
        assert table.BY_WORD[spec.name] is spec
        if spec.where == "shell":
            continue
        assert f"todo {spec.usage[0]}" in top, spec.name
        for script in scripts.values():
            assert spec.name in script, spec.name


def test_a_new_command_needs_one_table_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    def parse_hello(sc: Scanner) -> Version:
        sc.finish()
        return Version()

    spec = Spec("hello", ("hi",), ("hello",), "say hello", parse_hello, flags=("--loud",))
    monkeypatch.setattr(table, "TABLE", (*TABLE, spec))
    monkeypatch.setattr(table, "BY_WORD", {**table.BY_WORD, "hello": spec, "hi": spec})
    monkeypatch.setattr(table, "BY_NAME", {**table.BY_NAME, "hello": spec})
    monkeypatch.setattr(helptext, "TABLE", table.TABLE)
    monkeypatch.setattr(helptext, "BY_NAME", table.BY_NAME)
    monkeypatch.setattr(completion, "TABLE", table.TABLE)
    import dtm.cli.grammar as grammar

    monkeypatch.setattr(grammar, "BY_WORD", table.BY_WORD)
    assert parse(Words.from_argv(["hi"])).command == Version()
    assert "todo hello" in helptext.help_text(None, in_shell=False)
    assert "Say hello." in helptext.help_text("hello", in_shell=False)
    assert "hello" in table.command_words(in_shell=True)
    assert "--loud" in completion.script("bash")


def test_specs_are_frozen_values() -> None:
    with pytest.raises(AttributeError, match="immutable"):
        TABLE[0].name = "x"  # type: ignore[misc]


def test_no_unused_dependency() -> None:
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    names = {
        d.split(">")[0].split("<")[0].split("=")[0].strip().lower()
        for d in pyproject["project"]["dependencies"]
    }
    assert "click" not in names
