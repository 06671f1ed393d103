"""Run one parsed command against the request handler and print its result.

Rule: `run` is the one place where an error becomes output and an exit code: it prints
``ErrName: message`` (or the JSON error body) on stderr and returns the error's own
``exit_code`` from dtm.errors; success is 0.
"""

from __future__ import annotations

from dtm.cli.client import TaskClient
from dtm.cli.grammar import (
    ClusterStatus,
    Command,
    Create,
    Delete,
    Help,
    Invalid,
    ListTasks,
    Update,
)
from dtm.cli.helptext import help_text
from dtm.cli.render import Console
from dtm.errors import DtmError, ErrInternal
from dtm.wire import Deleted, Task, TaskList

Result = Task | TaskList | Deleted | None


def _verb(cmd: Update) -> str:
    if cmd.text is not None:
        return "Updated"
    return "Completed" if cmd.status == "complete" else "Reopened"


def execute(cmd: Command, client: TaskClient | None, console: Console, in_shell: bool) -> Result:
    """Carry out ``cmd``; errors are raised as DtmError."""
    if isinstance(cmd, Invalid):
        raise cmd.error
    if isinstance(cmd, Help):
        console.print(help_text(cmd.topic, in_shell))
        return None
    if client is None:
        raise ErrInternal(f"{type(cmd).__name__} needs a connection to the request handler")
    if isinstance(cmd, Create):
        task = client.create(cmd.text)
        console.created(task)
        return task
    if isinstance(cmd, ListTasks):
        tasks = client.list()
        console.listing(tasks)
        return tasks
    if isinstance(cmd, Update):
        task = client.update(cmd.ref, cmd.status, cmd.text)
        console.updated(task, _verb(cmd))
        return task
    if isinstance(cmd, Delete):
        gone = client.delete(cmd.ref)
        console.deleted(gone)
        return gone
    raise ErrInternal(f"{type(cmd).__name__} is not a command to run here")


def cluster_status(cmd: ClusterStatus, console: Console) -> int:
    """`cluster status|conflicts|inspect`: the cluster's views, from dtm.cli.cluster_status."""
    from dtm.cli import cluster_status as view

    try:
        return view.main(cmd.sub, list(cmd.args), console.json, console.out)
    except SystemExit as exc:  # its option parser after printing --help
        return exc.code if isinstance(exc.code, int) else 0
    return 0


def report(console: Console, err: DtmError) -> int:
    """Print ``err`` and return its exit code."""
    console.error(err)
    return err.exit_code


def run(
    cmd: Command, client: TaskClient | None, console: Console, in_shell: bool = False
) -> tuple[int, Result]:
    """Execute ``cmd``: its exit code and its result (None after an error)."""
    try:
        if isinstance(cmd, ClusterStatus):
            return cluster_status(cmd, console), None
        return 0, execute(cmd, client, console, in_shell)
    except DtmError as err:
        return report(console, err), None
