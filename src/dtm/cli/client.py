"""The request handler's task API as the CLI calls it, with the session token carried along.

Rule: every request sends the session's token in ``X-Dtm-Session`` (and, with ``--node``, the
chosen data node in ``X-Dtm-Node``); every answer's token (on
errors too) is merged in by pointwise maximum and handed to ``on_token`` when it grew, so the next
command — in this process or the next — reads at least what this one wrote or saw.

Failover: with several handler URLs, a request that got no answer from one goes to the next as
`dtm.core.failover.after_no_answer` says: at once if it was surely never sent; if it was sent,
only a read or a write idempotent by construction (`PATCH` of absolute fields, a create with
the ID the client chose) goes again, any other write is ErrMaybeApplied. The client starts at
``start`` (the handler that answered last), says so through ``on_answered`` when another one
answers, and notes each switch in one line through ``on_note`` (stderr, never stdout).

Answers are decoded into the wire structs; an error body becomes the matching `DtmError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from dtm.cli.transport import Answer, BaseUrl, Unanswered, send
from dtm.core.failover import after_no_answer
from dtm.core.session import merge_tokens
from dtm.core.tasks import Status
from dtm.errors import DtmError, ErrInternal, ErrMaybeApplied, ErrUnauthorized, ErrUnavailable
from dtm.wire import (
    NODE_HEADER,
    SESSION_HEADER,
    CreateTask,
    Deleted,
    SessionToken,
    Task,
    TaskList,
    TaskPage,
    UpdateTask,
    decode,
    encode,
)
from dtm.wire import (
    error_from_answer as error_from_answer_body,
)

T = TypeVar("T")
LIST_PAGE = 5000  # tasks per page of a list
# With another handler left to try, a connection (and its TLS handshake) gets this long.
CONNECT_TIMEOUT_S = 2.0
_SESSION = SESSION_HEADER.lower()


def error_from_answer(answer: Answer) -> DtmError:
    """The error a non-2xx answer stands for: its ErrorBody if it has one, else its status."""
    return error_from_answer_body(answer.status, answer.body)


def read_answer(answer: Answer, type_: type[T]) -> T:
    """The struct a 2xx answer carries, or the error a non-2xx answer stands for."""
    if not 200 <= answer.status < 300:
        raise error_from_answer(answer)
    try:
        return decode(answer.body, type_, what="answer")
    except DtmError as exc:
        raise ErrInternal(f"the request handler sent an unexpected answer: {exc}") from None


def token_from_header(value: str | None) -> SessionToken | None:
    """The session token of an answer's header; None when absent or unreadable (the one codec
    every reader of the header uses: dtm.core.sessiontoken)."""
    from dtm.core.sessiontoken import from_answer

    return from_answer(value)


def _failed(failures: list[tuple[BaseUrl, Unanswered]]) -> ErrUnavailable:
    """The error of a request no handler answered: the last one's, naming every one tried."""
    last = failures[-1][1].error
    if len(failures) == 1:
        return last
    tried = "; ".join(f.error.message for _, f in failures)
    return type(last)(f"no request handler answered: {tried}")


class TaskClient:
    """Calls the task API of a request handler, failing over between ``base``'s URLs."""

    def __init__(
        self,
        base: BaseUrl | Sequence[BaseUrl],
        *,
        timeout: float = 15.0,
        token: SessionToken | None = None,
        on_token: Callable[[SessionToken], None] | None = None,
        user_token: str | None = None,
        user_token_source: str = "",
        node: str | None = None,
        start: BaseUrl | None = None,
        on_answered: Callable[[BaseUrl], None] | None = None,
        on_note: Callable[[str], None] | None = None,
    ) -> None:
        self.urls: tuple[BaseUrl, ...] = (base,) if isinstance(base, BaseUrl) else tuple(base)
        if not self.urls:
            raise ValueError("no request handler URL")
        self.base = start if start in self.urls else self.urls[0]
        self.on_answered = on_answered
        self.on_note = on_note
        self.node = node
        self.user_token = user_token
        self.user_token_source = user_token_source
        self.timeout = timeout
        self.token = token or SessionToken()
        self.on_token = on_token

    def _unauthorized(self, err: DtmError) -> ErrUnauthorized:
        """The handler's refusal, with where the token came from and how to get one."""
        if self.user_token is None:
            why = (
                "no token found (looked for --token, $TODO_TOKEN, token in the config file, "
                f"{self.user_token_source})"
            )
        else:
            why = f"the token from {self.user_token_source} was refused"
        return ErrUnauthorized(
            f"{err.message} -- {why}. Get a token with `dtm user add NAME` on the cluster "
            "(the local cluster's: `make up` writes it), then pass --token, set $TODO_TOKEN "
            'or put token = "…" in ~/.config/dtm/config.toml'
        )

    def _exchange(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str], repeatable: bool
    ) -> Answer:
        """One request, to the current handler and then, as the failover rule says, the next."""
        first = self.urls.index(self.base)
        order = self.urls[first:] + self.urls[:first]
        failures: list[tuple[BaseUrl, Unanswered]] = []
        for i, base in enumerate(order):
            more = i + 1 < len(order)
            got = send(
                base,
                method,
                path,
                body=body,
                headers=headers,
                timeout=self.timeout,
                connect_timeout=CONNECT_TIMEOUT_S if more else None,
            )
            if isinstance(got, Answer):
                if base != self.base:
                    self.base = base
                    if self.on_answered is not None:
                        self.on_answered(base)
                return got
            failures.append((base, got))
            if after_no_answer(sent=got.sent, repeatable=repeatable) == "maybe-applied":
                target = path.split("?", 1)[0]
                raise ErrMaybeApplied(
                    f"{got.error.message} after {method} {target} was sent: the write may have "
                    "been applied; look (todo list) before writing again"
                )
            if more and self.on_note is not None:
                self.on_note(f"{got.error.message}; trying {order[i + 1]}")
        raise _failed(failures)

    def _call(
        self,
        method: str,
        path: str,
        body: bytes | None,
        type_: type[T],
        *,
        repeatable: bool = True,
    ) -> T:
        """``repeatable``: a second copy of the request, should the first be lost, is harmless."""
        headers = {SESSION_HEADER: encode(self.token).decode()}
        if self.user_token is not None:
            headers["Authorization"] = f"Bearer {self.user_token}"
        if self.node is not None:
            headers[NODE_HEADER] = self.node
        answer = self._exchange(method, path, body, headers, repeatable)
        seen = token_from_header(answer.headers.get(_SESSION))
        if seen is not None:
            merged = merge_tokens(self.token, seen)
            if merged != self.token:
                self.token = merged
                if self.on_token is not None:
                    self.on_token(merged)
        try:
            return read_answer(answer, type_)
        except ErrUnauthorized as err:
            raise self._unauthorized(err) from None

    def create(
        self,
        text: str,
        due: str | None = None,
        tags: Sequence[str] | None = None,
        task_id: str | None = None,
    ) -> Task:
        body = encode(CreateTask(text, due, list(tags or ()), task_id))
        # With the client's ID, the handler answers a second copy with the task the first made.
        return self._call("POST", "/v1/tasks", body, Task, repeatable=task_id is not None)

    def list(self, page: int = LIST_PAGE) -> TaskList:
        """Every task, page after page (``page`` tasks each): open and completed apart, each
        oldest first (the handler pages in ID order; the order to show is the CLI's)."""
        found: list[Task] = []
        after = ""
        while True:
            got = self._call("GET", f"/v1/tasks?limit={page}{after}", None, TaskPage)
            found += (
                Task(t.id, t.text, t.status, t.created, t.updated, t.due, t.tags) for t in got.tasks
            )
            if got.next is None:
                break
            after = f"&after={got.next}"
        found.sort(key=lambda t: (t.created, t.id))
        return TaskList(
            open=[t for t in found if t.status == "open"],
            complete=[t for t in found if t.status == "complete"],
        )

    def get(self, ref: str) -> Task:
        return self._call("GET", f"/v1/tasks/{ref}", None, Task)

    def update(
        self,
        ref: str,
        status: Status | None = None,
        text: str | None = None,
        due: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> Task:
        # Absolute values, not changes: a second copy leaves the task as the first did.
        body = encode(UpdateTask(status, text, due, None if tags is None else list(tags)))
        return self._call("PATCH", f"/v1/tasks/{ref}", body, Task)

    def delete(self, ref: str) -> Deleted:
        # A second copy would be answered ErrNoDataFound: not harmless.
        return self._call("DELETE", f"/v1/tasks/{ref}", None, Deleted, repeatable=False)
