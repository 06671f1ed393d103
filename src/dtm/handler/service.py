"""The task operations of the request handler, on top of the balancer client.

Rule: one task is one key/value row (key = ``<user>.<task ID>``, dtm.core.users; value =
TaskValue JSON); create is a PUT of a fresh random ID, update a read-modify-write of the row,
delete a DELETE of the resolved ID, all idempotent; every operation reads and writes only the
user's own key range, so another user's task is unknown exactly like a missing one; a row whose
value is not a task is skipped in lists and unknown by ID.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable

from dtm import wire
from dtm.core import tasks, users
from dtm.errors import ErrNoDataFound, ErrSyntaxInvalidArgs
from dtm.handler.metrics import HandlerMetrics
from dtm.handler.reads import SessionReads
from dtm.handler.session import Session
from dtm.handler.upstream import Upstream

log = logging.getLogger(__name__)

LIST_PAGE = 2000  # rows per page when listing
PREFIX_PAGE = tasks.MAX_CANDIDATES + 1  # rows read to resolve a prefix


class TaskService:
    """Create, list, get, update and delete tasks through the load balancer."""

    def __init__(
        self,
        upstream: Upstream,
        metrics: HandlerMetrics,
        now_ms: Callable[[], int],
        entropy: Callable[[int], bytes],
        reads: SessionReads,
    ) -> None:
        self.upstream = upstream
        self.reads = reads
        self.metrics = metrics
        self.now_ms = now_ms
        self.entropy = entropy

    def _task(self, user: str, row: wire.Row) -> wire.Task | None:
        """The task a row of ``user`` holds, or None (logged) when it is not one."""
        task_id = users.task_id_of(user, row.key)
        if row.deleted or task_id is None:
            return None
        try:
            value = wire.decode(bytes(row.value), wire.TaskValue, what="task value")
        except ErrSyntaxInvalidArgs as exc:
            self.metrics.invalid_row()
            log.warning("skipping row %r: its value is not a task (%s)", row.key, exc.message)
            return None
        return tasks.to_task(task_id, value)

    # ------------------------------------------------------------ operations

    async def create(self, user: str, body: wire.CreateTask, s: Session) -> wire.Task:
        value = tasks.new_value(body.text, self.now_ms())
        task_id = tasks.new_task_id(self.entropy(tasks.ENTROPY_BYTES))
        await self.upstream.put(users.task_key(user, task_id), wire.encode(value), s)
        return tasks.to_task(task_id, value)

    async def list(self, user: str, s: Session) -> wire.TaskList:
        prefix = users.key_prefix(user)
        found: list[wire.Task] = []
        after = users.scan_after(user)
        while True:
            page = await self.reads.scan(after, LIST_PAGE, s)
            # Rows come in key order from the start of the user's range: the user's own rows
            # are a leading run, and the first key outside the range ends the listing.
            mine = list(itertools.takewhile(lambda r: r.key.startswith(prefix), page.rows))
            for row in mine:
                task = self._task(user, row)
                if task is not None:
                    found.append(task)
            # (A merged page may hold no live row and still go on: its tombstones were dropped.)
            if page.next is None or len(mine) < len(page.rows):
                break
            after = page.next
        open_, complete = tasks.split_and_order(found)
        return wire.TaskList(open=open_, complete=complete)

    async def find(self, user: str, ref: str, s: Session) -> tuple[wire.Task, wire.Row, str | None]:
        """The one task of ``user`` that ``ref`` (a full ID or a unique prefix) names, with its
        row and the node that served it (None if not known)."""
        prefix = tasks.normalize_ref(ref)
        if len(prefix) == tasks.ID_LEN:
            row, node = await self.reads.get_row(users.task_key(user, prefix), s)
            task = None if row is None else self._task(user, row)
            if row is None or task is None:
                raise ErrNoDataFound(f"no task with ID {ref!r}")
            return task, row, node
        key_prefix = users.key_prefix(user) + prefix
        page = await self.reads.scan(users.scan_after(user, prefix), PREFIX_PAGE, s)
        hits: dict[str, tuple[wire.Task, wire.Row, str | None]] = {}
        for row in page.rows:
            if not row.key.startswith(key_prefix):
                break
            task = self._task(user, row)
            if task is not None:
                hits[task.id] = (task, row, None)
        more = (
            page.next is not None and bool(page.rows) and page.rows[-1].key.startswith(key_prefix)
        )
        return hits[tasks.resolve_ref(ref, prefix, list(hits), more).id]

    async def get(self, user: str, ref: str, s: Session) -> wire.Task:
        task, _, _ = await self.find(user, ref, s)
        return task

    async def update(self, user: str, ref: str, body: wire.UpdateTask, s: Session) -> wire.Task:
        change = tasks.check_update(body)
        task, row, _ = await self.find(user, ref, s)
        value = wire.TaskValue(task.text, task.status, task.created, task.updated)
        new = tasks.apply_update(value, change, self.now_ms())
        if new is None:
            return task
        s.see_hlc(row.hlc)
        await self.upstream.put(row.key, wire.encode(new), s)
        return tasks.to_task(task.id, new)

    async def delete(self, user: str, ref: str, s: Session) -> wire.Deleted:
        task, row, node = await self.find(user, ref, s)
        await self.reads.delete(row, node, s)
        return wire.Deleted(id=task.id, deleted=True)
