"""The task operations of the request handler, on top of the balancer client.

Rule: one task is one key/value row (key = ``<user>.<task ID>``, dtm.core.users; value =
TaskValue JSON); create is a PUT of a fresh random ID (or of the
ID an import gives, answered unchanged if it exists), update a read-modify-write of the row,
delete a DELETE of the resolved ID, all idempotent; every operation reads and writes only the
user's own key range, so another user's task is unknown exactly like a missing one; a row whose
value is not a task is skipped in lists and unknown by ID. A node's answer is decoded once,
straight into `wire.TaskRow`s; a list is a page of tasks in key (= ID) order, as the node's scan
gives them, never sorted or held whole here.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import msgspec

from dtm import wire
from dtm.core import tasks, users
from dtm.errors import (
    ErrMaybeApplied,
    ErrNoDataFound,
    ErrSyntaxInvalidArgs,
    ErrUnavailable,
)
from dtm.handler.copies import CopyWait
from dtm.handler.metrics import HandlerMetrics
from dtm.handler.reads import SessionReads
from dtm.handler.session import Session
from dtm.handler.upstream import Upstream

log = logging.getLogger(__name__)
T = TypeVar("T")

LIST_PAGE = 2000  # rows per node page when listing
PREFIX_PAGE = tasks.MAX_CANDIDATES + 1  # rows read to resolve a prefix

# A task of a page as it is encoded: (id, text, status, created, updated, due, tags),
# = wire.TaskItem.
Item = tuple[str, str, str, str, str, str | None, list[str]]
_LISTED = msgspec.json.Decoder(wire.ListedPage)
# wire.IsoTime with every digit written 0: what `_all_times` compares a page's times with.
_TIME_SHAPE = b"0000-00-00T00:00:00.000Z"
_DIGITS_AS_0 = bytes.maketrans(b"0123456789", b"0" * 10)


def _all_times(joined: str, n: int) -> bool:
    """Is ``joined`` exactly ``n`` wire.IsoTime values back to back? (One pass for a page.)"""
    if not joined.isascii() or len(joined) != n * len(_TIME_SHAPE):
        return False
    return joined.encode("ascii").translate(_DIGITS_AS_0) == _TIME_SHAPE * n


@dataclass(frozen=True, slots=True)
class Listed:
    """The user's tasks on one node page: as JSON array elements (no brackets), how many, the
    last one's ID, whether the user's range ended on the page, and the page's ``next``."""

    json: bytes
    count: int
    last_id: str | None
    ended: bool
    next_key: str | None


class TaskService:
    """Create, list, get, update and delete tasks through the load balancer."""

    def __init__(
        self,
        upstream: Upstream,
        metrics: HandlerMetrics,
        now_ms: Callable[[], int],
        entropy: Callable[[int], bytes],
        reads: SessionReads,
        copies: CopyWait,
    ) -> None:
        self.upstream = upstream
        self.reads = reads
        self.copies = copies
        self.metrics = metrics
        self.now_ms = now_ms
        self.entropy = entropy

    # ------------------------------------------------------------ decoding node answers

    def _skip(self, key: str, why: str) -> None:
        self.metrics.invalid_row()
        log.warning("skipping row %r: its value is not a task (%s)", key, why)

    def _rows(self, body: bytes) -> tuple[list[wire.TaskRow], str | None]:
        """A node's RowPage as TaskRows, in one pass; a row whose value is not a task comes
        back with value None (the slow path finds it)."""
        try:
            page = wire.decode(body, wire.TaskRowPage, what="answer")
            if all(r.value is not None or r.deleted for r in page.rows):
                return page.rows, page.next
        except ErrSyntaxInvalidArgs:
            pass
        raw = _malformed_guard(lambda: wire.decode(body, wire.RowPage, what="answer"))
        return [self._as_task_row(r) for r in raw.rows], raw.next

    def _row(self, body: bytes) -> wire.TaskRow:
        try:
            row = wire.decode(body, wire.TaskRow, what="answer")
            if row.value is not None or row.deleted:
                return row
        except ErrSyntaxInvalidArgs:
            pass
        return self._as_task_row(_malformed_guard(lambda: wire.decode(body, wire.Row)))

    def _as_task_row(self, row: wire.Row) -> wire.TaskRow:
        value: wire.TaskValue | None = None
        if not row.deleted:
            try:
                value = wire.decode(bytes(row.value), wire.TaskValue, what="task value")
            except ErrSyntaxInvalidArgs as exc:
                self._skip(row.key, exc.message)
        return wire.TaskRow(row.key, value, row.deleted, row.version, row.hlc, row.origin)

    def _task(self, user: str, row: wire.TaskRow) -> wire.Task | None:
        """The task a row of ``user`` holds, or None when it is not one."""
        task_id = users.task_id_of(user, row.key)
        if row.deleted or task_id is None or row.value is None:
            return None
        return tasks.to_task(task_id, row.value)

    # ------------------------------------------------------------ operations

    async def create(
        self, user: str, body: wire.CreateTask, s: Session, node: str | None = None
    ) -> wire.Task:
        value = tasks.new_value(body.text, self.now_ms(), body.due, body.tags)
        if body.id is not None:  # an import: idempotent by ID
            raw, _ = await self.reads.get_raw(users.task_key(user, body.id), s, node)
            known = None if raw is None else self._task(user, self._row(raw))
            if known is not None:
                return known
        task_id = body.id or tasks.new_task_id(self.entropy(tasks.ENTROPY_BYTES))
        try:
            key = users.task_key(user, task_id)
            reply = await self.upstream.put(key, wire.encode(value), s, node)
            self.reads.wrote(reply)
            await self.copies.held(key, reply)
        except ErrMaybeApplied as exc:
            raise ErrMaybeApplied(
                f"task {task_id} may have been created ({exc.message}); list the tasks before "
                "adding it again"
            ) from None
        return tasks.to_task(task_id, value)

    def _listed(self, body: bytes, prefix: str) -> tuple[list[Item], bool, str | None]:
        """The tasks of one node page under ``prefix``, whether the user's range ended on it,
        and the page's ``next``. The page is read as `wire.ListedPage` and its keys and times
        are checked all at once; should that fail, it is read strictly, row by row."""
        try:
            page = _LISTED.decode(body)
        except msgspec.DecodeError:  # (ValidationError too) the strict reading says what
            return self._listed_strictly(body, prefix)
        rows = page.rows
        mine = len(rows)
        for i, row in enumerate(rows):
            if not row.key.startswith(prefix):
                mine = i
                break
        cut = len(prefix)
        items: list[Item] = [
            (r.key[cut:], v.text, v.status, v.created, v.updated, v.due, v.tags)
            for r in rows[:mine]
            if (v := r.value) is not None and not r.deleted
        ]
        ids = "".join([i[0] for i in items])
        times = "".join([i[3] + i[4] for i in items])
        if (
            len(ids) != tasks.ID_LEN * len(items)
            or ids.strip(tasks.ALPHABET)
            or not _all_times(times, 2 * len(items))
            or len(items) != sum(1 for r in rows[:mine] if not r.deleted)
        ):
            return self._listed_strictly(body, prefix)
        return items, mine < len(rows), page.next

    def _listed_strictly(self, body: bytes, prefix: str) -> tuple[list[Item], bool, str | None]:
        rows, next_key = self._rows(body)
        cut = len(prefix)
        items: list[Item] = []
        for row in rows:
            key = row.key
            if not key.startswith(prefix):
                return items, True, next_key
            v = row.value
            task_id = key[cut:]
            if v is None or row.deleted or not tasks.is_task_id(task_id):
                continue
            items.append((task_id, v.text, v.status, v.created, v.updated, v.due, v.tags))
        return items, False, next_key

    async def page(
        self, user: str, after_id: str | None, want: int, s: Session, node: str | None = None
    ) -> tuple[list[bytes], str | None]:
        """Up to ``want`` of ``user``'s tasks with ID > ``after_id``, in ID order, as JSON array
        elements (one non-empty chunk per node page), and the ``after`` of the next page
        (None: the list ends here). A node page the handler still holds (its ETag matched) is
        not decoded again."""
        prefix = users.key_prefix(user)
        after = prefix + after_id if after_id else users.scan_after(user)
        derive = functools.partial(self._listed_json, prefix)
        chunks: list[bytes] = []
        count = 0
        while True:
            limit = min(want - count, LIST_PAGE)
            body = await self.reads.scan_raw(after, limit, s, node)
            # Rows come in key order from the start of the user's range: the user's own rows
            # are a leading run, and the first key outside the range ends the listing.
            got = self.reads.pages.view(body, ("listed", prefix), derive)
            if got.count:
                chunks.append(got.json)
                count += got.count
            if got.ended or got.next_key is None:
                return chunks, None
            if count >= want:
                return chunks, got.last_id
            after = got.next_key

    def _listed_json(self, prefix: str, body: bytes) -> Listed:
        items, ended, next_key = self._listed(body, prefix)
        last = items[-1][0] if items else None
        return Listed(wire.encode(items)[1:-1], len(items), last, ended, next_key)

    async def find(
        self, user: str, ref: str, s: Session, node: str | None = None
    ) -> tuple[wire.Task, wire.TaskRow, str | None]:
        """The one task of ``user`` that ``ref`` (a full ID or a unique prefix) names, with its
        row and the node that served it (None if not known)."""
        prefix = tasks.normalize_ref(ref)
        if len(prefix) == tasks.ID_LEN:
            raw, where = await self.reads.get_raw(users.task_key(user, prefix), s, node)
            row = None if raw is None else self._row(raw)
            task = None if row is None else self._task(user, row)
            if row is None or task is None:
                raise ErrNoDataFound(f"no task with ID {ref!r}")
            return task, row, where
        key_prefix = users.key_prefix(user) + prefix
        after = users.scan_after(user, prefix)
        raw_page = await self.reads.scan_raw(after, PREFIX_PAGE, s, node)
        rows, next_key = self._rows(raw_page)
        hits: dict[str, tuple[wire.Task, wire.TaskRow, str | None]] = {}
        for row in rows:
            if not row.key.startswith(key_prefix):
                break
            task = self._task(user, row)
            if task is not None:
                hits[task.id] = (task, row, node)
        more = next_key is not None and bool(rows) and rows[-1].key.startswith(key_prefix)
        return hits[tasks.resolve_ref(ref, prefix, list(hits), more).id]

    async def get(self, user: str, ref: str, s: Session, node: str | None = None) -> wire.Task:
        task, _, _ = await self.find(user, ref, s, node)
        return task

    async def update(
        self, user: str, ref: str, body: wire.UpdateTask, s: Session, node: str | None = None
    ) -> wire.Task:
        change = tasks.check_update(body)
        task, row, _ = await self.find(user, ref, s, node)
        new = tasks.apply_update(tasks.value_of(task), change, self.now_ms())
        if new is None:
            return task
        s.see_hlc(row.hlc)
        try:
            reply = await self.upstream.put(row.key, wire.encode(new), s, node)
            self.reads.wrote(reply)
            await self.copies.held(row.key, reply)
        except ErrMaybeApplied as exc:
            raise ErrMaybeApplied(
                f"the update of task {task.id} may have been applied ({exc.message}); "
                "show the task before changing it again"
            ) from None
        return tasks.to_task(task.id, new)

    async def delete(
        self, user: str, ref: str, s: Session, node: str | None = None
    ) -> wire.Deleted:
        task, row, where = await self.find(user, ref, s, node)
        try:
            took = await self.reads.delete(
                row.key, row.hlc, node or where, s, pinned=node is not None
            )
            if took is not None:
                await self.copies.held(row.key, took)
        except ErrMaybeApplied as exc:
            raise ErrMaybeApplied(
                f"task {task.id} may have been deleted ({exc.message}); list the tasks to see"
            ) from None
        return wire.Deleted(id=task.id, deleted=True)


def _malformed_guard(decode: Callable[[], T]) -> T:
    """``decode()``, a node answer that is not even a RowPage/Row being the balancer's fault."""
    try:
        return decode()
    except ErrSyntaxInvalidArgs as exc:
        raise ErrUnavailable(f"the load balancer sent a malformed answer: {exc.message}") from None
