"""`todo import FILE`: bring back the tasks of a `todo export` file.

Rule: the file is JSON Lines, one task (every field, as the API serves it) per line; the whole
file is read and checked before anything is sent, so a malformed file changes nothing and the
error names its line; then each task is created under its own ID if it is not there, changed to
match the file if it differs, and left alone if it is equal: importing twice changes nothing.
"""

from __future__ import annotations

import sys

from dtm.cli.client import TaskClient
from dtm.errors import DtmError, ErrPayloadTooLarge, ErrSyntaxInvalidArgs
from dtm.wire import Task, decode

MAX_IMPORT_BYTES = 64 * 1024 * 1024


def read_export(data: bytes, where: str) -> list[Task]:
    """The tasks of an export file; ErrSyntaxInvalidArgs naming the first bad line."""
    found: dict[str, int] = {}
    out: list[Task] = []
    for n, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            task = decode(line, Task, what="task")
        except DtmError as exc:
            raise ErrSyntaxInvalidArgs(f"{where} line {n}: {exc.message}") from None
        if task.id in found:
            raise ErrSyntaxInvalidArgs(
                f"{where} line {n}: task {task.id} is on line {found[task.id]} already"
            )
        found[task.id] = n
        out.append(task)
    return out


def _read(path: str) -> bytes:
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_IMPORT_BYTES + 1)
        else:
            with open(path, "rb") as f:
                data = f.read(MAX_IMPORT_BYTES + 1)
    except OSError as exc:
        raise ErrSyntaxInvalidArgs(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_IMPORT_BYTES:
        raise ErrPayloadTooLarge(f"{path} is over {MAX_IMPORT_BYTES} bytes")
    return data


def _same(a: Task, b: Task) -> bool:
    return (a.text, a.status, a.due, a.tags) == (b.text, b.status, b.due, b.tags)


def import_file(path: str, client: TaskClient) -> str:
    """Import ``path`` through ``client``; a one-line summary of what changed."""
    where = "stdin" if path == "-" else path
    wanted = read_export(_read(path), where)
    have = client.list()
    existing = {t.id: t for t in (*have.open, *have.complete)}
    created = changed = same = 0
    for task in wanted:
        now = existing.get(task.id)
        if now is None:
            now = client.create(task.text, task.due, list(task.tags), task_id=task.id)
            created += 1
        elif _same(now, task):
            same += 1
            continue
        else:
            changed += 1
        if not _same(now, task):  # a completed task, or one that differs
            client.update(
                task.id,
                task.status if task.status != now.status else None,
                task.text if task.text != now.text else None,
                (task.due or "") if task.due != now.due else None,
                list(task.tags) if task.tags != now.tags else None,
            )
    return f"Imported {where}: {created} created, {changed} changed, {same} unchanged"
