"""The task operations of the request handler, on top of the balancer client.

Rule: one task is one key/value row (key = the task ID, value = TaskValue JSON); create is a PUT
of a fresh random ID, update a read-modify-write of the row, delete a DELETE of the resolved ID,
all idempotent; a row whose value is not a task is skipped in lists and unknown by ID.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from dtm import wire
from dtm.core import tasks
from dtm.errors import ErrNoDataFound, ErrNotCaughtUp, ErrSyntaxInvalidArgs
from dtm.handler.metrics import HandlerMetrics
from dtm.handler.session import Session
from dtm.handler.upstream import Upstream

log = logging.getLogger(__name__)

LIST_PAGE = 2000  # rows per page when listing
PREFIX_PAGE = tasks.MAX_CANDIDATES + 1  # rows read to resolve a prefix
DELETE_ROUNDS = 3
DELETES_PER_ROUND = 2
DELETE_BACKOFF_MS = 20


class TaskService:
    """Create, list, get, update and delete tasks through the load balancer."""

    def __init__(
        self,
        upstream: Upstream,
        metrics: HandlerMetrics,
        now_ms: Callable[[], int],
        entropy: Callable[[int], bytes],
    ) -> None:
        self.upstream = upstream
        self.metrics = metrics
        self.now_ms = now_ms
        self.entropy = entropy

    def _task(self, row: wire.Row) -> wire.Task | None:
        """The task a row holds, or None (logged) when it is not one."""
        if row.deleted or not tasks.is_task_id(row.key):
            return None
        try:
            value = wire.decode(bytes(row.value), wire.TaskValue, what="task value")
        except ErrSyntaxInvalidArgs as exc:
            self.metrics.invalid_row()
            log.warning("skipping row %r: its value is not a task (%s)", row.key, exc.message)
            return None
        return tasks.to_task(row.key, value)

    # ------------------------------------------------------------ operations

    async def create(self, body: wire.CreateTask, s: Session) -> wire.Task:
        value = tasks.new_value(body.text, self.now_ms())
        task_id = tasks.new_task_id(self.entropy(tasks.ENTROPY_BYTES))
        await self.upstream.put(task_id, wire.encode(value), s)
        return tasks.to_task(task_id, value)

    async def list(self, s: Session) -> wire.TaskList:
        found: list[wire.Task] = []
        after: str | None = None
        while True:
            page = await self.upstream.scan(after, LIST_PAGE, s)
            for row in page.rows:
                task = self._task(row)
                if task is not None:
                    found.append(task)
            if page.next is None or not page.rows:
                break
            after = page.next
        open_, complete = tasks.split_and_order(found)
        return wire.TaskList(open=open_, complete=complete)

    async def find(self, ref: str, s: Session) -> tuple[wire.Task, wire.Row]:
        """The one task ``ref`` (a full ID or a unique prefix) names, with its row."""
        prefix = tasks.normalize_ref(ref)
        if len(prefix) == tasks.ID_LEN:
            row = await self.upstream.get_row(prefix, s)
            task = None if row is None else self._task(row)
            if row is None or task is None:
                raise ErrNoDataFound(f"no task with ID {ref!r}")
            return task, row
        page = await self.upstream.scan(tasks.scan_bound(prefix), PREFIX_PAGE, s)
        hits: dict[str, tuple[wire.Task, wire.Row]] = {}
        for row in page.rows:
            if row.key.startswith(prefix):
                task = self._task(row)
                if task is not None:
                    hits[row.key] = (task, row)
        more = page.next is not None and bool(page.rows) and page.rows[-1].key.startswith(prefix)
        return hits[tasks.resolve_ref(ref, prefix, list(hits), more).id]

    async def get(self, ref: str, s: Session) -> wire.Task:
        task, _ = await self.find(ref, s)
        return task

    async def update(self, ref: str, body: wire.UpdateTask, s: Session) -> wire.Task:
        change = tasks.check_update(body)
        task, row = await self.find(ref, s)
        value = wire.TaskValue(task.text, task.status, task.created, task.updated)
        new = tasks.apply_update(value, change, self.now_ms())
        if new is None:
            return task
        s.see_hlc(row.hlc)
        await self.upstream.put(task.id, wire.encode(new), s)
        return tasks.to_task(task.id, new)

    async def delete(self, ref: str, s: Session) -> wire.Deleted:
        task, row = await self.find(ref, s)
        s.see_hlc(row.hlc)
        for attempt in range(DELETE_ROUNDS):
            # The balancer spreads requests, so consecutive attempts go to different nodes.
            for _ in range(DELETES_PER_ROUND):
                if await self.upstream.delete(task.id, s):
                    return wire.Deleted(id=task.id, deleted=True)
            # The nodes that took the DELETE did not hold the task live: it is deleted already
            # (an earlier attempt, or someone else), or replication has not brought it there.
            again = await self.upstream.get_row(task.id, s)
            if again is None or self._task(again) is None:
                return wire.Deleted(id=task.id, deleted=True)
            await asyncio.sleep(DELETE_BACKOFF_MS * (attempt + 1) / 1000)
        raise ErrNotCaughtUp(
            f"task {task.id} is live on a node the load balancer did not send the delete to; "
            "try again shortly"
        )
