"""The `todo` grammar: argv and shell lines into commands; every mistake is ErrSyntaxInvalidArgs."""

from __future__ import annotations

import pytest

from dtm.cli.grammar import (
    Create,
    Delete,
    Empty,
    Exit,
    Help,
    Invalid,
    Invocation,
    ListTasks,
    Shell,
    Update,
    Words,
    parse,
)
from dtm.cli.parsed import (
    Clear,
    ClusterView,
    Completion,
    Export,
    Import,
    SessionReset,
    ShowTask,
    Version,
)
from dtm.errors import ErrPayloadTooLarge, ErrSyntaxInvalidArgs


def argv(*words: str) -> Invocation:
    return parse(Words.from_argv(list(words)))


def line(text: str) -> Invocation:
    return parse(Words.from_line(text), in_shell=True)


def error_of(inv: Invocation) -> str:
    assert isinstance(inv.command, Invalid), inv
    assert isinstance(inv.command.error, ErrSyntaxInvalidArgs)
    return inv.command.error.message


@pytest.mark.parametrize(
    ("words", "command"),
    [
        ((), Shell()),
        (("shell",), Shell()),
        (("add", "Buy", "groceries"), Create("Buy groceries")),
        (("create", "Buy groceries"), Create("Buy groceries")),
        (("add", "--", "-x", "y"), Create("-x y")),
        (("add", "Call", "mom", "--tonight"), Create("Call mom --tonight")),
        (("add", "  padded  "), Create("padded")),
        (("add", 'He said "hi" \\o/ ünï'), Create('He said "hi" \\o/ ünï')),
        (("list",), ListTasks()),
        (("ls",), ListTasks()),
        (("update", "ABCD", "complete"), Update(("abcd",), "complete")),
        (("update", "abcd1234", "Open"), Update(("abcd1234",), "open")),
        (("update", "abcd", "--status", "open"), Update(("abcd",), "open")),
        (("update", "abcd", "--text", "new", "words"), Update(("abcd",), None, "new words")),
        (("update", "abcd", "--text=new", "words"), Update(("abcd",), None, "new words")),
        (("update", "abcd", "--text", "--", "-dash"), Update(("abcd",), None, "-dash")),
        (("update", "abcd", "complete", "--text", "x"), Update(("abcd",), "complete", "x")),
        (("update", "abcd", "efgh", "complete"), Update(("abcd", "efgh"), "complete")),
        (("edit", "abcd", "new", "text"), Update(("abcd",), None, "new text")),
        (("delete", "abcd"), Delete(("abcd",))),
        (("rm", "abcd"), Delete(("abcd",))),
        (("delete", "abcd", "efgh"), Delete(("abcd", "efgh"))),
        (("done", "abcd", "efgh"), Update(("abcd", "efgh"), "complete")),
        (("reopen", "abcd"), Update(("abcd",), "open")),
        (("show", "abcd", "efgh"), ShowTask(("abcd", "efgh"))),
        (("add", "Pay", "rent", "--due", "2026-12-31"), Create("Pay rent", "2026-12-31")),
        (("add", "Buy", "milk", "+shop", "+Food"), Create("Buy milk", None, ("shop", "food"))),
        (("add", "--due=+3d", "Call", "+1", "back"), Create("Call +1 back", "+3d")),
        (("add", "--", "+shop", "--due", "x"), Create("+shop --due x")),
        (("edit", "abcd", "--due", "none"), Update(("abcd",), None, None, "none")),
        (("edit", "abcd", "+home", "New"), Update(("abcd",), None, "New", None, ("home",))),
        (("edit", "abcd", "--no-tags"), Update(("abcd",), None, None, None, ())),
        (("update", "abcd", "--due", "tomorrow"), Update(("abcd",), None, None, "tomorrow")),
        (("list", "milk", "+shop"), ListTasks(words=("milk",), tags=("shop",))),
        (("list", "--open", "--limit", "5"), ListTasks("open", limit=5)),
        (("list", "--completed", "--sort=due"), ListTasks("complete", sort="due")),
        (("list", "--due-before", "+7d", "--ids"), ListTasks(due_before="+7d", ids=True)),
        (("export",), Export()),
        (("import", "tasks.jsonl"), Import("tasks.jsonl")),
        (("session", "reset"), SessionReset()),
        (("completion", "fish"), Completion("fish")),
        (("--version",), Version()),
        (("-V",), Version()),
        (("help",), Help()),
        (("help", "rm"), Help("delete")),
        (("--help",), Help()),
        (("-h",), Help()),
        (("add", "--help"), Help("create")),
        (("delete", "x", "--help"), Help("delete")),
        (("update", "abcd", "-h"), Help("update")),
    ],
)
def test_commands(words: tuple[str, ...], command: object) -> None:
    assert argv(*words).command == command


def test_options_go_anywhere_before_the_text() -> None:
    for words in (
        ("--json", "add", "x"),
        ("add", "--json", "x"),
        ("--url", "http://h:1", "--json", "ls"),
        ("update", "abcd", "complete", "--json"),
        ("delete", "--json", "abcd"),
    ):
        assert argv(*words).options.json, words
    inv = argv("add", "x", "--json")
    assert inv.command == Create("x --json") and not inv.options.json
    assert argv("--url", "http://h:1", "ls").options.url == "http://h:1"
    assert argv("--url=http://h:2", "ls").options.url == "http://h:2"
    assert argv("--json").command == Shell() and argv("--json").options.json


@pytest.mark.parametrize(
    ("words", "fragment"),
    [
        (("add",), "needs the task text"),
        (("add", "   "), "empty"),
        (("add", "a\tb"), "control character"),
        (("add", "line\nbreak"), "control character"),
        (("add", "bad\udcffbyte"), "surrogate"),
        (("add", "-x"), "put -- before text"),
        (("frobnicate",), "unknown command 'frobnicate'"),
        (("creat", "x"), "did you mean 'create'"),
        (("list", "--limit", "0"), "positive number"),
        (("list", "--sort", "size"), "use created, due, text"),
        (("list", "--due-before", "someday"), "not a day"),
        (("add", "x", "--due", "2026-02-30"), "not a day"),
        (("add", "x", "--due"), "--due needs a value"),
        (("done",), "needs a task ID"),
        (("completion", "tcsh"), "needs a shell: bash, zsh, fish"),
        (("session",), "needs a subcommand: reset"),
        (("import",), "needs a file"),
        (("edit", "abcd"), "needs the new text"),
        (("--node", "a b", "ls"), "not a node name"),
        (("clear",), "unknown command"),
        (("update",), "needs a task ID"),
        (("update", "abcd"), "needs a status"),
        (("update", "abcd", "done"), "invalid status 'done'"),
        (("update", "abcd", "open", "complete"), "one status"),
        (("update", "abcd", "--text"), "needs the task text"),
        (("delete",), "needs a task ID"),
        (("delete", "abc"), "too short"),
        (("delete", "abcd!"), "not an ID"),
        (("delete", "abcdefghjkmnp"), "too long"),
        (("help", "list", "x"), "no further arguments"),
        (("--url",), "--url needs a value"),
        (("--frob", "ls"), "unknown option '--frob'"),
        (("help", "frob"), "unknown command"),
        (("exit",), "unknown command"),
    ],
)
def test_mistakes(words: tuple[str, ...], fragment: str) -> None:
    assert fragment in error_of(argv(*words))


def test_text_over_the_limit_is_a_syntax_error() -> None:
    inv = argv("add", "x" * 1001)
    assert isinstance(inv.command, Invalid)
    assert isinstance(inv.command.error, ErrPayloadTooLarge)
    assert inv.command.error.exit_code == 2
    assert argv("add", "x" * 1000).command == Create("x" * 1000)


def test_json_is_known_even_when_the_command_is_wrong() -> None:
    inv = argv("--json", "update", "abcd", "done")
    assert isinstance(inv.command, Invalid) and inv.options.json


def test_shell_lines_keep_the_text_as_typed() -> None:
    assert line('create He said "hi  there" \\o/').command == Create('He said "hi  there" \\o/')
    assert line('add an "unbalanced quote').command == Create('an "unbalanced quote')
    assert line("add it's   fine  \n").command == Create("it's   fine")
    assert line("update abcd --text a 'b' c").command == Update(("abcd",), None, "a 'b' c")
    assert line("edit abcd  two  spaces").command == Update(("abcd",), None, "two  spaces")


def test_shell_only_words() -> None:
    assert line("").command == Empty()
    assert line("   ").command == Empty()
    assert line("# a comment").command == Empty()
    assert line("exit").command == Exit()
    assert line("quit").command == Exit()
    assert line("todo list").command == ListTasks()
    assert line("list --json").options.json
    assert "already in the shell" in error_of(line("shell"))
    assert "when the shell starts" in error_of(line("list --url http://h:1"))
    assert "try 'help'" in error_of(line("frob"))


def test_the_cluster_group() -> None:
    assert argv("cluster", "status").command == ClusterView("status", ())
    # Its own options (the sync's --url, --config) are left for its own parser.
    assert argv("cluster", "status", "--url", "http://h:1").command == ClusterView(
        "status", ("--url", "http://h:1")
    )
    assert argv("cluster", "--help").command == Help("cluster")
    assert argv("help", "cluster").command == Help("cluster")
    assert "needs a subcommand: status" in error_of(argv("cluster"))
    assert "unknown cluster subcommand 'frob'" in error_of(argv("cluster", "frob"))
    assert line("cluster status").command == ClusterView("status", ())


def test_options_of_every_command() -> None:
    inv = argv("--node", "store1", "update", "abcd", "complete")
    assert inv.options.node == "store1" and inv.command == Update(("abcd",), "complete")
    assert argv("list", "--node=store2").options.node == "store2"
    assert not argv("list", "--no-pager").options.pager and argv("list").options.pager
    assert line("clear").command == Clear()
    assert line("list --node store1").options.node == "store1"


def test_shell_text_keeps_its_spacing_unless_a_field_is_taken_out() -> None:
    assert line("add a  b +shop").command == Create("a b", None, ("shop",))
    assert line("add a  b").command == Create("a  b")
