"""Tab completion in the terminal shell: command words, task IDs, status words."""

from __future__ import annotations

import io

from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from dtm.cli.client import TaskClient
from dtm.cli.commands import Context
from dtm.cli.render import Console
from dtm.cli.shell import Shell
from dtm.cli.shell_tty import TodoCompleter
from dtm.cli.transport import parse_url


def complete(shell: Shell, text: str) -> list[str]:
    doc = Document(text, len(text))
    return [c.text for c in TodoCompleter(shell).get_completions(doc, CompleteEvent(True))]


def make_shell() -> Shell:
    client = TaskClient(parse_url("http://127.0.0.1:1"))  # never called here
    shell = Shell(Context(client, Console(io.StringIO(), io.StringIO())))
    shell.known = {"abcd1234wxyz": "Buy", "abce5678wxyz": "Call", "k9m2p3q4r5s6": "Pay"}
    return shell


def test_command_words() -> None:
    s = make_shell()
    assert complete(s, "li") == ["list"]
    assert complete(s, "") == sorted(complete(s, ""))
    assert {"create", "add", "exit", "quit"} <= set(complete(s, ""))
    assert "shell" not in complete(s, "")
    assert complete(s, "help up") == ["update"]
    assert "--open" in complete(s, "list ")


def test_task_ids_from_what_the_shell_knows() -> None:
    s = make_shell()
    assert complete(s, "delete ") == ["abcd", "abce", "k9m2"]
    assert complete(s, "rm k") == ["k9m2"]
    assert complete(s, "update ABC") == ["abcd", "abce"]
    assert complete(s, "edit abcd12") == ["abcd1234wxyz"]  # past the short ID: the whole ID
    assert complete(s, "delete zz") == []
    assert complete(s, "done ") == ["abcd", "abce", "k9m2"]
    assert complete(s, "show k") == ["k9m2"]


def test_several_ids_complete_without_the_ones_given() -> None:
    s = make_shell()
    assert complete(s, "delete abcd ") == ["abce", "k9m2"]
    assert complete(s, "done abcd k9m2 ") == ["abce"]


def test_status_words() -> None:
    s = make_shell()
    assert complete(s, "update abcd ")[:3] == ["complete", "open", "--text"]
    assert complete(s, "update abcd c") == ["complete"]
    assert complete(s, "update abcd complete ") == ["--status", "--due", "--no-tags"]


def test_completion_follows_the_command_table() -> None:
    s = make_shell()
    assert {"show", "done", "reopen", "export", "import", "clear", "session"} <= set(
        complete(s, "")
    )
    assert "completion" not in complete(s, "")  # one-shot only
    assert complete(s, "list --s") == ["--sort"]
    assert complete(s, "session ") == ["reset"]
    assert complete(s, "cluster ") == ["status", "conflicts", "inspect"]
    assert complete(s, "add Buy milk --d") == ["--due"]
