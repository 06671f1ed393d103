"""`GET /v1/tasks`: a page of the user's tasks, or the whole list streamed page by page.

Rule: ``limit`` (1..wire.MAX_TASK_PAGE) asks for one page of at most that many tasks after the
task ID ``after`` (the previous page's ``next``); without ``limit`` the whole list is answered,
and when it is longer than one node page it is streamed as each node page arrives (the handler
holds one page at a time, whatever the list's size). A streamed answer's session header is the
token as of its first page; every later page is read with the token as it has grown. A failure
after the first streamed page ends the connection before the body is complete.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

from dtm import wire
from dtm.core import tasks
from dtm.errors import ErrSyntaxInvalidArgs
from dtm.handler.service import LIST_PAGE, TaskService
from dtm.handler.session import Session
from dtm.site import Answer

_PARAMS: Final = frozenset({"limit", "after"})


def parse_query(q: list[tuple[str, str]]) -> tuple[str | None, int | None]:
    """The request's ``after`` task ID and ``limit``, checked (ErrSyntaxInvalidArgs)."""
    unknown = {name for name, _ in q} - _PARAMS
    if unknown:
        raise ErrSyntaxInvalidArgs(f"unexpected query parameter(s): {', '.join(sorted(unknown))}")
    given: dict[str, str] = {}
    for name, value in q:
        if name in given:
            raise ErrSyntaxInvalidArgs(f"query parameter {name} given more than once")
        given[name] = value
    after = given.get("after")
    if after is not None and not tasks.is_task_id(after):
        raise ErrSyntaxInvalidArgs(f"after must be a task ID (a page's next), not {after[:40]!r}")
    raw = given.get("limit")
    if raw is None:
        return after, None
    ok = raw.isascii() and raw.isdigit() and len(raw) <= 9
    if not ok or not 1 <= int(raw) <= wire.MAX_TASK_PAGE:
        raise ErrSyntaxInvalidArgs(
            f"limit must be a whole number from 1 to {wire.MAX_TASK_PAGE}, not {raw[:20]!r}"
        )
    return after, int(raw)


def _page(chunks: list[bytes], next_id: str | None) -> Answer:
    return Answer(
        200, b'{"tasks":[' + b",".join(chunks) + b'],"next":' + wire.encode(next_id) + b"}"
    )


async def answer(
    service: TaskService,
    user: str,
    after: str | None,
    limit: int | None,
    s: Session,
    node: str | None = None,
) -> Answer:
    """The answer to one list request (see the module's rule)."""
    chunks, next_id = await service.page(user, after, limit or LIST_PAGE, s, node)
    if limit is not None or next_id is None:
        return _page(chunks, next_id)

    async def rest(next_id: str | None) -> AsyncIterator[bytes]:
        while next_id is not None:
            chunks, next_id = await service.page(user, next_id, LIST_PAGE, s, node)
            if chunks:
                yield b"," + b",".join(chunks)
        yield b'],"next":null}'

    return Answer(200, b'{"tasks":[' + b",".join(chunks), stream=rest(next_id))
