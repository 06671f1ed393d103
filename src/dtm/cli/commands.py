"""Run one parsed command against the request handler and print its result.

Rule: `run` is the one place where an error becomes output and an exit code: it prints
``ErrName: message`` (or the JSON error body) on stderr and returns the error's own
``exit_code`` from dtm.errors; success is 0. A command given several IDs does each in turn,
reports each, and exits with the first failure's code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date

from dtm.cli.client import TaskClient
from dtm.cli.parsed import (
    Clear,
    ClusterView,
    Command,
    Completion,
    Create,
    Delete,
    Export,
    Help,
    Import,
    Invalid,
    ListTasks,
    SessionReset,
    ShowTask,
    Update,
    Version,
)
from dtm.cli.render import Console
from dtm.core.tasks import Query, parse_due, select
from dtm.errors import DtmError, ErrInternal
from dtm.wire import Deleted, Task, TaskList, encode

Result = Task | TaskList | Deleted | list[Task | Deleted] | None


@dataclass
class Context:
    """What one command runs with."""

    client: TaskClient | None
    console: Console
    in_shell: bool = False
    pager: bool = False  # a long list may go through $PAGER
    env: Mapping[str, str] = field(default_factory=dict)
    today: Callable[[], date] = date.today
    forget_session: Callable[[], str] | None = None  # `session reset`: what was forgotten


def _verb(cmd: Update) -> str:
    if cmd.text is not None or cmd.due is not None or cmd.tags is not None:
        return "Updated"
    return "Completed" if cmd.status == "complete" else "Reopened"


def _due(word: str | None, today: date) -> str | None:
    if word is None:
        return None
    return "" if word == "none" else parse_due(word, today)


def _client(ctx: Context) -> TaskClient:
    if ctx.client is None:
        raise ErrInternal("this command needs a connection to the request handler")
    return ctx.client


def _each(
    refs: tuple[str, ...], ctx: Context, one: Callable[[str], Task | Deleted]
) -> tuple[int, list[Task | Deleted]]:
    code, done = 0, []
    for ref in refs:
        try:
            done.append(one(ref))
        except DtmError as err:
            code = code or report(ctx.console, err)
    return code, done


def _list(cmd: ListTasks, ctx: Context) -> TaskList:
    tasks = _client(ctx).list()
    today = ctx.today()
    q = Query(cmd.show, cmd.words, cmd.tags, _due(cmd.due_before, today), cmd.sort, cmd.limit)
    open_, complete = select(tasks.open, tasks.complete, q)
    shown = TaskList(open=open_, complete=complete)
    if cmd.ids:
        for t in (*open_, *complete):
            ctx.console.print(t.id)
        return shown
    sections = ("open", "complete") if cmd.show == "all" else (cmd.show,)
    all_ids = [t.id for t in (*tasks.open, *tasks.complete)]
    ctx.console.listing(shown, today, sections, all_ids, ctx.pager, ctx.env)
    return shown


def execute(cmd: Command, ctx: Context) -> tuple[int, Result]:
    """Carry out ``cmd``; errors are raised as DtmError (those of one of several IDs are
    reported here and give the exit code)."""
    console = ctx.console
    if isinstance(cmd, Invalid):
        raise cmd.error
    if isinstance(cmd, Help):
        from dtm.cli.helptext import help_text

        console.print(help_text(cmd.topic, ctx.in_shell))
        return 0, None
    if isinstance(cmd, Version):
        from dtm import __version__

        console.print(f"todo (dtm) {__version__}")
        return 0, None
    if isinstance(cmd, Completion):
        from dtm.cli.completion import script

        console.print(script(cmd.shell))
        return 0, None
    if isinstance(cmd, Clear):
        if console.human:
            console.out.write("\x1b[H\x1b[2J\x1b[3J")
            console.out.flush()
        return 0, None
    if isinstance(cmd, ClusterView):
        return cluster_view(cmd, console), None
    if isinstance(cmd, SessionReset):
        if ctx.forget_session is None:
            raise ErrInternal("no session file to reset")
        console.print(ctx.forget_session())
        return 0, None
    client = _client(ctx)
    today = ctx.today()
    if isinstance(cmd, Create):
        task = client.create(cmd.text, _due(cmd.due, today), list(cmd.tags))
        console.created(task)
        return 0, task
    if isinstance(cmd, ListTasks):
        return 0, _list(cmd, ctx)
    if isinstance(cmd, ShowTask):

        def show(ref: str) -> Task:
            task = client.get(ref)
            console.shown(task, today)
            return task

        return _each(cmd.refs, ctx, show)
    if isinstance(cmd, Update):
        tags = None if cmd.tags is None else list(cmd.tags)
        due = _due(cmd.due, today)

        def update(ref: str) -> Task:
            task = client.update(ref, cmd.status, cmd.text, due, tags)
            console.updated(task, _verb(cmd))
            return task

        return _each(cmd.refs, ctx, update)
    if isinstance(cmd, Delete):

        def delete(ref: str) -> Deleted:
            gone = client.delete(ref)
            console.deleted(gone)
            return gone

        return _each(cmd.refs, ctx, delete)
    if isinstance(cmd, Export):
        tasks = client.list()
        for t in (*tasks.open, *tasks.complete):
            console.out.write(encode(t).decode() + "\n")
        console.out.flush()
        return 0, tasks
    if isinstance(cmd, Import):
        from dtm.cli.transfer import import_file

        console.print(import_file(cmd.path, client))
        return 0, client.list()
    raise ErrInternal(f"{type(cmd).__name__} is not a command to run here")


def cluster_view(cmd: ClusterView, console: Console) -> int:
    """`cluster <view>`: the view's module prints it (text, or JSON with --json)."""
    import importlib

    from dtm.cli.table import CLUSTER_VIEWS

    view = importlib.import_module(CLUSTER_VIEWS[cmd.view])
    try:
        code: int = view.main(cmd.view, list(cmd.args), console.json, console.out)
    except SystemExit as exc:  # its option parser after printing --help
        return exc.code if isinstance(exc.code, int) else 0
    return code


def report(console: Console, err: DtmError) -> int:
    """Print ``err`` and return its exit code."""
    console.error(err)
    return err.exit_code


def run(cmd: Command, ctx: Context) -> tuple[int, Result]:
    """Execute ``cmd``: its exit code and its result (None after an error)."""
    try:
        return execute(cmd, ctx)
    except DtmError as err:
        return report(ctx.console, err), None
