"""`GET /v1/tasks`: a page of the user's tasks, or the whole list streamed page by page.

Rule: ``limit`` (1..wire.MAX_TASK_PAGE) asks for one page of at most that many tasks after the
task ID ``after`` (the previous page's ``next``); without ``limit`` the whole list is answered,
and when it is longer than one node page it is streamed as each node page arrives (the handler
holds one page at a time, whatever the list's size). A streamed answer's session header is the
token as of its first page; every later page is read with the token as it has grown. A failure
after the first streamed page ends the connection before the body is complete.
"""

from __future__ import annotations

import logging
from typing import Final

from aiohttp import web

from dtm import wire
from dtm.core import tasks
from dtm.errors import ErrSyntaxInvalidArgs
from dtm.handler.service import LIST_PAGE, TaskService
from dtm.handler.session import Session

log = logging.getLogger(__name__)

_PARAMS: Final = frozenset({"limit", "after"})


def parse_query(request: web.Request) -> tuple[str | None, int | None]:
    """The request's ``after`` task ID and ``limit``, checked (ErrSyntaxInvalidArgs)."""
    q = request.query
    unknown = set(q) - _PARAMS
    if unknown:
        raise ErrSyntaxInvalidArgs(f"unexpected query parameter(s): {', '.join(sorted(unknown))}")
    for name in _PARAMS:
        if len(q.getall(name, [])) > 1:
            raise ErrSyntaxInvalidArgs(f"query parameter {name} given more than once")
    after = q.get("after")
    if after is not None and not tasks.is_task_id(after):
        raise ErrSyntaxInvalidArgs(f"after must be a task ID (a page's next), not {after[:40]!r}")
    raw = q.get("limit")
    if raw is None:
        return after, None
    ok = raw.isascii() and raw.isdigit() and len(raw) <= 9
    if not ok or not 1 <= int(raw) <= wire.MAX_TASK_PAGE:
        raise ErrSyntaxInvalidArgs(
            f"limit must be a whole number from 1 to {wire.MAX_TASK_PAGE}, not {raw[:20]!r}"
        )
    return after, int(raw)


def _page(chunks: list[bytes], next_id: str | None) -> web.Response:
    body = b'{"tasks":[' + b",".join(chunks) + b'],"next":' + wire.encode(next_id) + b"}"
    return web.Response(body=body, content_type="application/json")


async def answer(
    request: web.Request,
    service: TaskService,
    user: str,
    after: str | None,
    limit: int | None,
    s: Session,
    node: str | None = None,
) -> web.StreamResponse:
    """The answer to one list request (see the module's rule)."""
    chunks, next_id = await service.page(user, after, limit or LIST_PAGE, s, node)
    if limit is not None or next_id is None:
        return _page(chunks, next_id)
    resp = web.StreamResponse()
    resp.content_type = "application/json"
    resp.headers[wire.SESSION_HEADER] = s.header
    await resp.prepare(request)
    await resp.write(b'{"tasks":[' + b",".join(chunks))
    try:
        while next_id is not None:
            chunks, next_id = await service.page(user, next_id, LIST_PAGE, s, node)
            if chunks:
                await resp.write(b"," + b",".join(chunks))
    except Exception as exc:  # the head is sent: the only way left to fail is to hang up
        log.warning("a streamed list broke off: %s", getattr(exc, "message", exc))
        resp.force_close()
        if request.transport is not None:
            request.transport.close()
        return resp
    await resp.write(b'],"next":null}')
    await resp.write_eof()
    return resp
