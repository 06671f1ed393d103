"""Every value that crosses a process boundary, as a frozen typed struct.

Rule: services never index raw dicts; they decode bytes into one of these structs with `decode`
(which turns any malformed input into `ErrSyntaxInvalidArgs`) and encode with `encode`. The exact
JSON of each message is pinned by tests/wire.

A key/value *value* travels as `msgspec.Raw`: the JSON text exactly as the writing node
canonicalised it, so replication copies bytes and never re-stamps or re-formats a row. A
tombstone's value is JSON ``null``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec
from msgspec import Meta

from dtm.core.keys import _KEY as _KEY_RE
from dtm.core.keys import MAX_KEY_LEN
from dtm.errors import (
    DtmError,
    ErrPayloadTooLarge,
    ErrSyntaxInvalidArgs,
    from_status,
    from_wire,
)

NULL: Final = msgspec.Raw(b"null")

# Headers.
HLC_HEADER: Final = "X-Dtm-Hlc"  # the caller's highest seen HLC stamp, observed before stamping
SESSION_HEADER: Final = "X-Dtm-Session"  # a compact JSON SessionToken
WAIT_HEADER: Final = "X-Dtm-Wait"  # ms a read may wait for this replica to catch up (default 0)
DEADLINE_HEADER: Final = "X-Dtm-Deadline"  # unix ms after which a forwarded write must not apply
NODE_HEADER: Final = "X-Dtm-Node"  # a NodeName: the balancer sends the request to that node only


# ---------------------------------------------------------------- field types
#
# Each field's constraint is on its type (msgspec `Meta`), so a decoded message is in range by
# construction and an out-of-range field is refused naming its path (e.g. ``$.rows[0].hlc``); the
# OpenAPI documents are generated from the same types. Every range is exactly what the system
# itself produces. Task constants are repeated here because dtm.core.tasks imports this module;
# tests/wire pins them equal to the core's.

MAX_INT: Final = 2**63 - 1  # the largest version, count, stamp or time (SQLite's int64)
# The end of the string. Not `$`: Python's `$` also matches before a final newline.
_END: Final = r"(?![\s\S])"
MAX_NODE_NAME: Final = 64
NODE_NAME_PATTERN: Final = f"^[A-Za-z0-9_-]{{1,{MAX_NODE_NAME}}}{_END}"
_NODE_NAME: Final = re.compile(NODE_NAME_PATTERN)


def is_node_name(text: str) -> bool:
    """Is ``text`` what `NodeName` accepts (a header value, say, checked before use)?"""
    return _NODE_NAME.search(text) is not None


EPOCH_CHARS: Final = 16  # node.main.new_epoch: 8 random bytes in hex
TASK_ID_ALPHABET: Final = "0123456789abcdefghjkmnpqrstvwxyz"  # = core.tasks.ALPHABET
TASK_ID_LEN: Final = 12  # = core.tasks.ID_LEN
MAX_TASK_TEXT: Final = 1000  # = core.tasks.MAX_TEXT
MAX_CANDIDATES: Final = 10  # = core.tasks.MAX_CANDIDATES
MAX_BUCKETS: Final = 4096  # = core.digest.MAX_BUCKETS
MAX_PAGE_ROWS: Final = 10_000  # the most rows one page of /v1/kv or /v1/changes holds

Count = Annotated[int, Meta(ge=0, le=MAX_INT)]
Version = Annotated[int, Meta(ge=0, le=MAX_INT, description="a node's sequence number")]
# An HLC stamp: ``physical_ms << 16 | logical`` (dtm.core.hlc). Its range lives only here.
Stamp = Annotated[int, Meta(ge=0, le=MAX_INT, description="an HLC stamp")]
UnixMs = Annotated[int, Meta(ge=0, le=MAX_INT, description="Unix time in milliseconds")]
NodeName = Annotated[str, Meta(pattern=NODE_NAME_PATTERN, min_length=1, max_length=MAX_NODE_NAME)]
# A `Row`'s key and origin: the same rules as `Key` and `NodeName`, but their patterns are
# checked by `decode` for all the rows of a message at once (`_check_rows`: one regular
# expression over every key), not row by row while decoding, which was most of a page's decoding
# time. Their documents show the patterns all the same.
KEY_PATTERN: Final = f"^{_KEY_RE.pattern}{_END}"
Key = Annotated[str, Meta(pattern=KEY_PATTERN, min_length=1, max_length=MAX_KEY_LEN)]
RowKey = Annotated[
    str,
    Meta(min_length=1, max_length=MAX_KEY_LEN, extra_json_schema={"pattern": KEY_PATTERN}),
]
RowOrigin = Annotated[
    str,
    Meta(min_length=1, max_length=MAX_NODE_NAME, extra_json_schema={"pattern": NODE_NAME_PATTERN}),
]
Epoch = Annotated[
    str,
    Meta(
        pattern=f"^[0-9a-f]{{{EPOCH_CHARS}}}{_END}", min_length=EPOCH_CHARS, max_length=EPOCH_CHARS
    ),
]
TaskId = Annotated[
    str,
    Meta(
        pattern=f"^[{TASK_ID_ALPHABET}]{{{TASK_ID_LEN}}}{_END}",
        min_length=TASK_ID_LEN,
        max_length=TASK_ID_LEN,
    ),
]
# A task text as the handler makes it: core.tasks.check_text's result (no C0/C1 control
# characters, 1..1000).
TaskText = Annotated[
    str,
    Meta(pattern=f"^[^\\x00-\\x1f\\x7f-\\x9f]+{_END}", min_length=1, max_length=MAX_TASK_TEXT),
]
# A task text as a node holds and the handler serves it: only its length is checked, so a row
# written past the handler (by a holder of the cluster credential) stays visible, and deletable,
# to its user; every human output escapes control characters (dtm.cli.render).
StoredText = Annotated[str, Meta(min_length=1, max_length=MAX_TASK_TEXT)]
# core.tasks.iso_ms: UTC ISO 8601 with milliseconds.
IsoTime = Annotated[
    str,
    Meta(
        pattern=f"^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T[0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}\\.[0-9]{{3}}Z{_END}",
        min_length=24,
        max_length=24,
    ),
]
# A due date: a real calendar day ``YYYY-MM-DD`` (dtm.core.tasks.check_due), month lengths and
# leap years included, years 0001-9999 as Python's `date`; "" in an update clears it.
_YEAR = "(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
_LEAP = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_DAY = (
    f"(?:{_YEAR}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)"
    f"|(?:0[13578]|1[02])-31)|{_LEAP}-02-29)"
)
DUE_PATTERN: Final = f"^{_DAY}{_END}"
DueDate = Annotated[str, Meta(pattern=DUE_PATTERN, min_length=10, max_length=10)]
DueChange = Annotated[str, Meta(pattern=f"^(?:{_DAY})?{_END}", max_length=10)]
MAX_TAGS: Final = 20  # = core.tasks.MAX_TAGS
MAX_TAG_LEN: Final = 32  # = core.tasks.MAX_TAG_LEN
# A tag: what follows ``+`` in ``+shop`` (dtm.core.tasks.check_tag): lowercase, no spaces.
Tag = Annotated[
    str, Meta(pattern=f"^[a-z][a-z0-9_.-]*{_END}", min_length=1, max_length=MAX_TAG_LEN)
]
Tags = Annotated[list[Tag], Meta(max_length=MAX_TAGS)]
BucketHash = Annotated[str, Meta(pattern=f"^[0-9a-f]{{16}}{_END}", min_length=16, max_length=16)]
ErrorName = Annotated[str, Meta(pattern=f"^Err[A-Za-z]{{1,60}}{_END}", max_length=63)]
Status = Literal["open", "complete"]
_Short = Annotated[str, Meta(max_length=TASK_ID_LEN)]
# A task text as a client sends it. Checked by dtm.core.tasks.check_text, not here, so that its
# errors say what is wrong and a long text is 413; the schema documents that rule: no control
# characters, at least one character that is not white space (str.isspace), at most 1000 after
# stripping (documented as 1000 at most).
_NOT_SPACE = "\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
_TEXT_IN = "\\x00-\\x1f\\x7f-\\x9f"
TextIn = Annotated[
    str,
    Meta(
        extra_json_schema={
            "pattern": f"^[^{_TEXT_IN}]*[^{_NOT_SPACE}][^{_TEXT_IN}]*{_END}",
            "maxLength": MAX_TASK_TEXT,
        }
    ),
]


class Wire(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Base of every wire message."""


# ---------------------------------------------------------------- errors


class ErrorBody(Wire, frozen=True, omit_defaults=True):
    """The body of every 4xx/5xx answer."""

    error: ErrorName
    message: str
    # ErrAmbiguousID's matching task IDs; kept lenient so a client always learns the error.
    candidates: Annotated[list[_Short], Meta(max_length=MAX_CANDIDATES)] = []


# ---------------------------------------------------------------- data node


class Row(Wire, frozen=True):
    """One key/value row as a data node stores and serves it.

    ``version`` is the serving node's own sequence number for the row; ``(hlc, origin)`` is the
    write's identity and its place in the last-writer-wins order, the same on every node.
    """

    key: RowKey
    value: msgspec.Raw
    deleted: bool
    version: Version
    hlc: Stamp
    origin: RowOrigin


PageRows = Annotated[list[Row], Meta(max_length=MAX_PAGE_ROWS)]


class PutBody(Wire, frozen=True):
    """`PUT /v1/kv/{key}`."""

    value: msgspec.Raw


class RowPage(Wire, frozen=True):
    """`GET /v1/kv?after=&limit=`: live rows in key order; ``next`` is the ``after`` to ask next."""

    rows: PageRows
    next: Key | None


class ChangesPage(Wire, frozen=True, omit_defaults=True):
    """`GET /v1/changes?since=V&limit=N&wait=MS`: rows with version > V in version order.
    ``more``: the page was cut at the node's byte cap (more rows may follow; sent only then)."""

    node: NodeName
    epoch: Epoch
    last_version: Version
    rows: PageRows
    more: bool = False


class ReplicateRequest(Wire, frozen=True, omit_defaults=True):
    """`POST /v1/replicate`: a batch of ``source``'s rows, read from its feed.

    ``source_version`` is the source's version this batch reaches: once the target has applied
    it, the target holds everything the source held up to that version. ``target_epoch`` is the
    target's epoch the batch was planned for (it leaves out rows the target held at that epoch):
    a target at another epoch refuses the batch (None: a repair, which only adds rows).
    """

    source: NodeName
    epoch: Epoch
    source_version: Version
    rows: list[Row]  # bounded by the body's byte cap (a repair sends a whole bucket)
    target_epoch: Epoch | None = None


class ReplicateResponse(Wire, frozen=True):
    """What the target did with a batch: ``applied`` rows won the merge, ``ignored`` did not.

    ``held_from`` is 0 when every row was taken; else the lowest version among the rows held back
    (stamped more than the max offset ahead of the target's clock: not stored, not merged). The
    source's feed then counts as applied only below it, so the sync delivers that row again.
    """

    applied: Count
    ignored: Count
    last_version: Version
    losers: list[Row] = []
    held_from: Version = 0


class RowId(Wire, frozen=True):
    """The identity of one write: enough to name a tombstone to purge."""

    key: Key
    hlc: Stamp
    origin: NodeName


class PurgeRequest(Wire, frozen=True):
    """`POST /v1/purge`: drop these tombstones, each only if it is still exactly that write."""

    rows: list[RowId]


class PurgeResponse(Wire, frozen=True):
    purged: Count


class Digest(Wire, frozen=True):
    """`GET /v1/digest?buckets=N`: one hash per key bucket, over every row (tombstones too)."""

    node: NodeName
    epoch: Epoch
    last_version: Version
    buckets: Annotated[list[BucketHash], Meta(min_length=1, max_length=MAX_BUCKETS)]


class BucketRows(Wire, frozen=True):
    """`GET /v1/digest/{bucket}?buckets=N`: every row of one bucket, tombstones included."""

    node: NodeName
    epoch: Epoch
    rows: list[Row]


class PeerApplied(Wire, frozen=True):
    """How far a node has applied another node's feed (recorded by `POST /v1/replicate`)."""

    epoch: Epoch
    version: Version


class NodeStatus(Wire, frozen=True):
    """`GET /v1/status` of a data node."""

    node: NodeName
    epoch: Epoch
    last_version: Version
    live_rows: Count
    tombstones: Count
    hlc: Stamp
    skew_events: Count
    applied: dict[NodeName, PeerApplied]
    # Refusing client writes: the clock is beyond the max offset from most peers (see clockfence).
    fenced: bool = False
    # The last measured offset (ms, peer minus this node) of each peer that answered /healthz.
    offsets: dict[NodeName, int] = {}


class Health(Wire, frozen=True, omit_defaults=True):
    """`GET /healthz` of any component (the one endpoint that needs no credential).

    ``now_ms`` is the answering process's physical clock (unix ms), so a caller can measure its
    clock offset; ``fenced`` is true on a data node whose clock is beyond the max offset from its
    peers: it refuses client writes until that is fixed, and the balancer sends them elsewhere.
    """

    status: Literal["ok"]
    component: Literal["node", "balancer", "handler", "sync", "view"]
    name: Annotated[str, Meta(max_length=300)]  # a node's name, or another component's host:port
    now_ms: UnixMs = 0
    fenced: bool = False


# ---------------------------------------------------------------- sessions


class SessionToken(Wire, frozen=True, omit_defaults=True):
    """What a client session has seen: per node, the highest version it wrote or read there
    (with that node's epoch), and the highest HLC stamp it has seen.

    Requests carry the session's token in the ``X-Dtm-Session`` header; every data-node answer
    carries the node's contribution in the same header (``{node: version}``, its epoch, its
    clock), which the caller merges in with `dtm.core.session`.
    """

    versions: dict[NodeName, Version] = {}
    epochs: dict[NodeName, Epoch] = {}
    hlc: Stamp = 0


# ---------------------------------------------------------------- codec

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def encode(msg: Any) -> bytes:
    """Encode any wire message (or plain JSON data) to compact JSON bytes."""
    return _encoder.encode(msg)


def decode(data: bytes | str, type_: type[T], *, limit: int | None = None, what: str = "body") -> T:
    """Decode JSON into ``type_``, turning every malformed input into one of our errors."""
    if limit is not None and len(data) > limit:
        raise ErrPayloadTooLarge(f"{what} is {len(data)} bytes; the limit is {limit}")
    dec = _decoders.get(type_)
    if dec is None:
        dec = _decoders[type_] = msgspec.json.Decoder(type_)
    try:
        msg = dec.decode(data)
    except msgspec.ValidationError as exc:
        raise ErrSyntaxInvalidArgs(f"invalid {what}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ErrSyntaxInvalidArgs(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ErrSyntaxInvalidArgs(f"{what} is nested too deeply") from None
    rows_at = ROWS_AT.get(type_)
    if rows_at is not None:
        field, rows = rows_at(msg)
        _check_rows(rows, field, what)
    return msg  # type: ignore[no-any-return]


# Where each message holds `Row`s, whose keys and origins `decode` checks all at once: the
# message's field (the path an error names) and its rows. Every type holding a `Row` is here
# (tests/wire checks that none is missing).
ROWS_AT: Final[dict[type[Any], Callable[[Any], tuple[str, list[Row]]]]] = {
    Row: lambda m: ("", [m]),
    RowPage: lambda m: ("rows", m.rows),
    ChangesPage: lambda m: ("rows", m.rows),
    ReplicateRequest: lambda m: ("rows", m.rows),
    ReplicateResponse: lambda m: ("losers", m.losers),
    BucketRows: lambda m: ("rows", m.rows),
}
# Every key of a message, each followed by a newline (which no key may hold: a key with one
# would also change the count of lines, which is checked too).
_KEY_LINES: Final = re.compile(f"(?:{_KEY_RE.pattern}\n)*")


def _check_rows(rows: list[Row], field: str, what: str) -> None:
    """Each row's key is a `Key` and its origin a `NodeName` (their patterns: the lengths were
    checked while decoding), else ErrSyntaxInvalidArgs naming the first wrong row's path."""
    if not rows:
        return
    keys = "\n".join([r.key for r in rows]) + "\n"
    if (
        keys.count("\n") == len(rows)
        and _KEY_LINES.fullmatch(keys) is not None
        and all(is_node_name(o) for o in {r.origin for r in rows})
    ):
        return
    for i, r in enumerate(rows):
        at = f"$.{field}[{i}]" if field else "$"
        for name, value, pattern in (
            ("key", r.key, KEY_PATTERN),
            ("origin", r.origin, NODE_NAME_PATTERN),
        ):
            if re.search(pattern, value) is None:
                raise ErrSyntaxInvalidArgs(
                    f"invalid {what}: Expected `str` matching regex {pattern!r} - at `{at}.{name}`"
                )
    raise ErrSyntaxInvalidArgs(f"invalid {what}: a row's key or origin is malformed")


def error_body(err: DtmError) -> ErrorBody:
    """The body every service answers an error with."""
    return ErrorBody(err.name, err.message, list(err.candidates))


def error_from_answer(status: int, body: bytes, peer: str = "") -> DtmError:
    """The error a non-2xx HTTP answer stands for: its ErrorBody if it has one (the same class,
    message and candidates the peer raised), else one made from the status, naming ``peer``."""
    try:
        eb = decode(body, ErrorBody, what="error body")
    except DtmError:
        snippet = body[:200].decode("utf-8", "replace").strip() or "no details"
        return from_status(status, f"{peer or 'the server'} answered HTTP {status}: {snippet}")
    return from_wire(eb.error, eb.message, tuple(eb.candidates))


def canonical_json(raw: msgspec.Raw) -> msgspec.Raw:
    """The compact form of a JSON value, so equal values have equal bytes on every node."""
    return msgspec.Raw(_encoder.encode(msgspec.json.decode(bytes(raw))))


# ---------------------------------------------------------------- tasks (request handler API)


class TaskValue(Wire, frozen=True, omit_defaults=True):
    """The value of a task's key/value row, as stored on the data nodes (key = the task ID).

    ``created`` and ``updated`` are UTC times in ISO 8601 with milliseconds. ``due`` and ``tags``
    are left out when empty, so a row written before they existed reads as having none and a
    task without them is stored exactly as before.
    """

    text: StoredText
    status: Status
    created: IsoTime
    updated: IsoTime
    due: DueDate | None = None
    tags: Tags = []


class Task(Wire, frozen=True):
    """A task as the handler serves it."""

    id: TaskId
    text: StoredText
    status: Status
    created: IsoTime
    updated: IsoTime
    due: DueDate | None = None
    tags: Tags = []


class TaskList(Wire, frozen=True):
    """A user's whole list as the CLI shows it (``todo list --json``): open and completed
    tasks, each oldest first. The CLI assembles it from `TaskPage` answers."""

    open: list[Task]
    complete: list[Task]


class TaskItem(Wire, frozen=True, array_like=True):
    """One task of a `TaskPage`, compactly: ``[id, text, status, created, updated, due, tags]``."""

    id: TaskId
    text: StoredText
    status: Status
    created: IsoTime
    updated: IsoTime
    due: DueDate | None = None
    tags: Tags = []


MAX_TASK_PAGE: Final = MAX_PAGE_ROWS  # the most tasks one `GET /v1/tasks?limit=` page holds


class TaskPage(Wire, frozen=True):
    """`GET /v1/tasks[?limit=N&after=ID]`: the user's tasks in ID order (the storage order);
    ``next`` is the ``after`` to ask for the next page, null at the end of the list."""

    tasks: list[TaskItem]
    next: TaskId | None


class TaskRow(Wire, frozen=True):
    """A data node's `Row` read with its value as a task (null: a tombstone, or not a task),
    so the handler decodes a node's answer in one pass. Same JSON as `Row`."""

    key: Key
    value: TaskValue | None
    deleted: bool
    version: Version
    hlc: Stamp
    origin: NodeName


class TaskRowPage(Wire, frozen=True):
    """A `RowPage` read as `TaskRow`s."""

    rows: Annotated[list[TaskRow], Meta(max_length=MAX_PAGE_ROWS)]
    next: Key | None


# The list's view of a node page: only what a list uses, with the checks that cost a regular
# expression per row (the key's and the times' patterns) left to `dtm.handler.service`, which
# makes them for a whole page at once and reads the page strictly (as `TaskRowPage`) if they
# fail. Fields a list does not use (version, hlc, origin) are skipped.
_Time24 = Annotated[str, Meta(min_length=24, max_length=24)]


class ListedValue(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A task value as a list reads it: `TaskValue` with the times' lengths only checked."""

    text: StoredText
    status: Status
    created: _Time24
    updated: _Time24
    due: DueDate | None = None
    tags: Tags = []


class ListedRow(msgspec.Struct, frozen=True):
    """A row as a list reads it (unknown fields ignored)."""

    key: Annotated[str, Meta(max_length=MAX_KEY_LEN)]
    value: ListedValue | None
    deleted: bool


class ListedPage(msgspec.Struct, frozen=True):
    """A `RowPage` as a list reads it."""

    rows: Annotated[list[ListedRow], Meta(max_length=MAX_PAGE_ROWS)]
    next: Key | None


class CreateTask(Wire, frozen=True, omit_defaults=True):
    """`POST /v1/tasks`: the text is checked by `dtm.core.tasks.check_text` (stripped first, so
    its errors can say what is wrong and a long text is 413)."""

    text: TextIn
    due: DueDate | None = None
    tags: Tags = []
    # An ID of the caller's choosing (`todo import`): the task is created under it unless a task
    # with that ID exists already, which is then answered unchanged (idempotent by ID).
    id: TaskId | None = None


class UpdateTask(Wire, frozen=True, omit_defaults=True):
    """`PATCH /v1/tasks/{id}`: at least one field. ``due`` "" clears the due date; ``tags``
    replaces the whole set ([] clears it)."""

    status: Status | None = None
    text: TextIn | None = None  # checked by dtm.core.tasks.check_text, as in CreateTask
    due: DueChange | None = None
    tags: Tags | None = None


class Deleted(Wire, frozen=True):
    """`DELETE /v1/tasks/{id}`."""

    id: TaskId
    deleted: bool


# ---------------------------------------------------------------- balancer

UPSTREAM_HEADER: Final = "X-Dtm-Upstream"  # set by the balancer: the data node that answered


class UpstreamStatus(Wire, frozen=True):
    """One data node as the balancer sees it. Counts are since the balancer started:
    ``requests`` attempts sent there, ``failures`` of them that got no usable answer,
    ``retries`` attempts there that repeated a request first tried elsewhere; ``checks`` the
    health checks made of it, ``failed_checks`` those it failed."""

    name: NodeName
    url: str
    healthy: bool
    in_flight: Count
    requests: Count
    failures: Count
    retries: Count
    ejections: Count
    readmissions: Count
    fenced: bool = False  # its /healthz says its clock fences client writes (sent elsewhere)
    checks: Count = 0
    failed_checks: Count = 0


class BalancerStatus(Wire, frozen=True):
    """`GET /v1/status` of the balancer: ``unanswered`` requests got its own 503/504."""

    component: Literal["balancer"]
    requests: Count
    in_flight: Count
    unanswered: Count
    nodes: list[UpstreamStatus]


# ---------------------------------------------------------------- request handler


class HandlerStatus(Wire, frozen=True):
    """`GET /v1/status` of the request handler. Counts are since it started: ``requests`` it
    answered, ``failed`` of them with an error, ``upstream_requests`` it sent to the balancer,
    ``catch_up_retries`` reads repeated with a wait, ``not_caught_up`` reads answered 409, and
    ``invalid_rows`` rows skipped because their value was not a task."""

    component: Literal["handler"]
    balancer: str  # its balancers' URLs, joined by ", " when there are several
    requests: Count
    in_flight: Count
    failed: Count
    upstream_requests: Count
    catch_up_retries: Count
    not_caught_up: Count
    invalid_rows: Count


# ---------------------------------------------------------------- sync


class SyncPair(Wire, frozen=True):
    """One (source, target) pair of the sync process: how far ``target`` has applied ``source``.

    ``lag_seconds`` is the age of the oldest change not yet applied (None: not known yet).
    """

    source: NodeName
    target: NodeName
    cursor: Version
    source_last_version: Version
    lag_versions: Count
    lag_seconds: float | None
    rows_sent: Count
    conflicts: Count
    reachable: bool


class PurgeHold(Wire, frozen=True):
    """A tombstone awaiting purge and what holds it back."""

    key: Key
    hlc: Stamp
    origin: NodeName
    waiting_for: list[str]


class AntiEntropyResult(Wire, frozen=True):
    """The outcome of one anti-entropy pass (``at_ms``: when it finished, Unix ms)."""

    at_ms: UnixMs
    nodes: list[NodeName]
    buckets: Annotated[int, Meta(ge=1, le=MAX_BUCKETS)]
    differing_buckets: Count
    rows_repaired: Count
    error: str | None = None


class SyncStatus(Wire, frozen=True):
    """`GET /v1/status` of the sync process."""

    component: Literal["sync"]
    mode: Literal["longpoll", "interval"]
    nodes: list[NodeName]
    forgotten: list[NodeName]
    epochs: dict[NodeName, Epoch]
    pairs: list[SyncPair]
    conflicts: Count
    tombstones_awaiting_purge: Count
    purge_holds: list[PurgeHold]
    purged: Count
    anti_entropy: AntiEntropyResult | None
    rounds: dict[NodeName, Count]  # feed pages read per source since start
    errors: dict[NodeName, str] = {}  # the last error of each node currently in backoff


class ConflictWrite(Wire, frozen=True):
    """One side of a conflict: a write exactly as its origin made it (``value`` null for a
    delete). ``wall_ms`` is the stamp's physical part: when, by its origin's clock, it was made."""

    value: msgspec.Raw
    deleted: bool
    hlc: Stamp
    wall_ms: UnixMs
    origin: NodeName


class ConflictEntry(Wire, frozen=True):
    """One conflict: ``key`` was written on two nodes concurrently; last-writer-wins kept
    ``winner`` and ``loser`` was lost. ``node`` is where the two met and the merge decided it,
    ``at_ms`` when the sync saw it (its clock), ``seq`` the entry's number in the on-disk log."""

    seq: Count
    key: Key
    winner: ConflictWrite
    loser: ConflictWrite
    node: NodeName
    at_ms: UnixMs


class ConflictLog(Wire, frozen=True):
    """`GET /v1/conflicts?limit=N`: the newest conflicts (oldest first) and how many the log has
    recorded in all (it survives restarts; older entries are dropped past its bound)."""

    total: Count
    conflicts: list[ConflictEntry]


class ForgetRequest(Wire, frozen=True):
    """`POST /v1/forget`: remove a node from the cluster for good (it holds no purge back)."""

    node: NodeName


class ForgetResponse(Wire, frozen=True):
    node: NodeName
    forgotten: list[NodeName]


class CursorRecord(Wire, frozen=True):
    """One persisted cursor: ``target`` durably applied ``source``'s feed up to ``version``."""

    source: NodeName
    target: NodeName
    source_epoch: Epoch
    target_epoch: Epoch
    version: Version


class PurgeRecord(Wire, frozen=True):
    """One decided purge in the sync's state file: the tombstone, and the nodes that confirmed
    it (it is sent to the others, after a restart too)."""

    rid: RowId
    done: list[NodeName] = []


class SyncStateFile(Wire, frozen=True):
    """The sync process's state file (written atomically after acknowledged batches)."""

    cursors: list[CursorRecord]
    forgotten: list[NodeName] = []
    purges: list[PurgeRecord] = []
