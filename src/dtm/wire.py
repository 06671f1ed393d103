"""Every value that crosses a process boundary, as a frozen typed struct.

Rule: services never index raw dicts; they decode bytes into one of these structs with `decode`
(which turns any malformed input into `ErrSyntaxInvalidArgs`) and encode with `encode`. The exact
JSON of each message is pinned by tests/wire.

A key/value *value* travels as `msgspec.Raw`: the JSON text exactly as the writing node
canonicalised it, so replication copies bytes and never re-stamps or re-formats a row. A
tombstone's value is JSON ``null``.
"""

from __future__ import annotations

from typing import Any, Final, Literal, TypeVar

import msgspec

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


class Wire(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Base of every wire message."""


# ---------------------------------------------------------------- errors


class ErrorBody(Wire, frozen=True, omit_defaults=True):
    """The body of every 4xx/5xx answer."""

    error: str
    message: str
    candidates: list[str] = []


# ---------------------------------------------------------------- data node


class Row(Wire, frozen=True):
    """One key/value row as a data node stores and serves it.

    ``version`` is the serving node's own sequence number for the row; ``(hlc, origin)`` is the
    write's identity and its place in the last-writer-wins order, the same on every node.
    """

    key: str
    value: msgspec.Raw
    deleted: bool
    version: int
    hlc: int
    origin: str


class PutBody(Wire, frozen=True):
    """`PUT /v1/kv/{key}`."""

    value: msgspec.Raw


class RowPage(Wire, frozen=True):
    """`GET /v1/kv?after=&limit=`: live rows in key order; ``next`` is the ``after`` to ask next."""

    rows: list[Row]
    next: str | None


class ChangesPage(Wire, frozen=True):
    """`GET /v1/changes?since=V&limit=N&wait=MS`: rows with version > V in version order."""

    node: str
    epoch: str
    last_version: int
    rows: list[Row]


class ReplicateRequest(Wire, frozen=True):
    """`POST /v1/replicate`: a batch of ``source``'s rows, read from its feed.

    ``source_version`` is the source's version this batch reaches: once the target has applied
    it, the target holds everything the source held up to that version.
    """

    source: str
    epoch: str
    source_version: int
    rows: list[Row]


class ReplicateResponse(Wire, frozen=True):
    """What the target did with a batch: ``applied`` rows won the merge, ``ignored`` did not.

    ``held_from`` is 0 when every row was taken; else the lowest version among the rows held back
    (stamped more than the max offset ahead of the target's clock: not stored, not merged). The
    source's feed then counts as applied only below it, so the sync delivers that row again.
    """

    applied: int
    ignored: int
    last_version: int
    losers: list[Row] = []
    held_from: int = 0


class RowId(Wire, frozen=True):
    """The identity of one write: enough to name a tombstone to purge."""

    key: str
    hlc: int
    origin: str


class PurgeRequest(Wire, frozen=True):
    """`POST /v1/purge`: drop these tombstones, each only if it is still exactly that write."""

    rows: list[RowId]


class PurgeResponse(Wire, frozen=True):
    purged: int


class Digest(Wire, frozen=True):
    """`GET /v1/digest?buckets=N`: one hash per key bucket, over every row (tombstones too)."""

    node: str
    epoch: str
    last_version: int
    buckets: list[str]


class BucketRows(Wire, frozen=True):
    """`GET /v1/digest/{bucket}?buckets=N`: every row of one bucket, tombstones included."""

    node: str
    epoch: str
    rows: list[Row]


class PeerApplied(Wire, frozen=True):
    """How far a node has applied another node's feed (recorded by `POST /v1/replicate`)."""

    epoch: str
    version: int


class NodeStatus(Wire, frozen=True):
    """`GET /v1/status` of a data node."""

    node: str
    epoch: str
    last_version: int
    live_rows: int
    tombstones: int
    hlc: int
    skew_events: int
    applied: dict[str, PeerApplied]
    # Refusing client writes: the clock is beyond the max offset from most peers (see clockfence).
    fenced: bool = False
    # The last measured offset (ms, peer minus this node) of each peer that answered /healthz.
    offsets: dict[str, int] = {}


class Health(Wire, frozen=True, omit_defaults=True):
    """`GET /healthz` of any component (the one endpoint that needs no credential).

    ``now_ms`` is the answering process's physical clock (unix ms), so a caller can measure its
    clock offset; ``fenced`` is true on a data node whose clock is beyond the max offset from its
    peers: it refuses client writes until that is fixed, and the balancer sends them elsewhere.
    """

    status: Literal["ok"]
    component: str
    name: str
    now_ms: int = 0
    fenced: bool = False


# ---------------------------------------------------------------- sessions


class SessionToken(Wire, frozen=True, omit_defaults=True):
    """What a client session has seen: per node, the highest version it wrote or read there
    (with that node's epoch), and the highest HLC stamp it has seen.

    Requests carry the session's token in the ``X-Dtm-Session`` header; every data-node answer
    carries the node's contribution in the same header (``{node: version}``, its epoch, its
    clock), which the caller merges in with `dtm.core.session`.
    """

    versions: dict[str, int] = {}
    epochs: dict[str, str] = {}
    hlc: int = 0


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
        return dec.decode(data)  # type: ignore[no-any-return]
    except msgspec.ValidationError as exc:
        raise ErrSyntaxInvalidArgs(f"invalid {what}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ErrSyntaxInvalidArgs(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ErrSyntaxInvalidArgs(f"{what} is nested too deeply") from None


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


class TaskValue(Wire, frozen=True):
    """The value of a task's key/value row, as stored on the data nodes (key = the task ID).

    ``created`` and ``updated`` are UTC times in ISO 8601 with milliseconds.
    """

    text: str
    status: Literal["open", "complete"]
    created: str
    updated: str


class Task(Wire, frozen=True):
    """A task as the handler serves it."""

    id: str
    text: str
    status: Literal["open", "complete"]
    created: str
    updated: str


class TaskList(Wire, frozen=True):
    """`GET /v1/tasks`: open and completed tasks, each oldest first."""

    open: list[Task]
    complete: list[Task]


class CreateTask(Wire, frozen=True):
    """`POST /v1/tasks`."""

    text: str


class UpdateTask(Wire, frozen=True, omit_defaults=True):
    """`PATCH /v1/tasks/{id}`: at least one field."""

    status: Literal["open", "complete"] | None = None
    text: str | None = None


class Deleted(Wire, frozen=True):
    """`DELETE /v1/tasks/{id}`."""

    id: str
    deleted: bool


# ---------------------------------------------------------------- balancer

UPSTREAM_HEADER: Final = "X-Dtm-Upstream"  # set by the balancer: the data node that answered


class UpstreamStatus(Wire, frozen=True):
    """One data node as the balancer sees it. Counts are since the balancer started:
    ``requests`` attempts sent there, ``failures`` of them that got no usable answer,
    ``retries`` attempts there that repeated a request first tried elsewhere."""

    name: str
    url: str
    healthy: bool
    in_flight: int
    requests: int
    failures: int
    retries: int
    ejections: int
    readmissions: int


class BalancerStatus(Wire, frozen=True):
    """`GET /v1/status` of the balancer: ``unanswered`` requests got its own 503/504."""

    component: Literal["balancer"]
    requests: int
    in_flight: int
    unanswered: int
    nodes: list[UpstreamStatus]


# ---------------------------------------------------------------- request handler


class HandlerStatus(Wire, frozen=True):
    """`GET /v1/status` of the request handler. Counts are since it started: ``requests`` it
    answered, ``failed`` of them with an error, ``upstream_requests`` it sent to the balancer,
    ``catch_up_retries`` reads repeated with a wait, ``not_caught_up`` reads answered 409, and
    ``invalid_rows`` rows skipped because their value was not a task."""

    component: Literal["handler"]
    balancer: str
    requests: int
    in_flight: int
    failed: int
    upstream_requests: int
    catch_up_retries: int
    not_caught_up: int
    invalid_rows: int


# ---------------------------------------------------------------- sync


class SyncPair(Wire, frozen=True):
    """One (source, target) pair of the sync process: how far ``target`` has applied ``source``.

    ``lag_seconds`` is the age of the oldest change not yet applied (None: not known yet).
    """

    source: str
    target: str
    cursor: int
    source_last_version: int
    lag_versions: int
    lag_seconds: float | None
    rows_sent: int
    conflicts: int
    reachable: bool


class PurgeHold(Wire, frozen=True):
    """A tombstone awaiting purge and what holds it back."""

    key: str
    hlc: int
    origin: str
    waiting_for: list[str]


class AntiEntropyResult(Wire, frozen=True):
    """The outcome of one anti-entropy pass (``at_ms``: when it finished, Unix ms)."""

    at_ms: int
    nodes: list[str]
    buckets: int
    differing_buckets: int
    rows_repaired: int
    error: str | None = None


class SyncStatus(Wire, frozen=True):
    """`GET /v1/status` of the sync process."""

    component: Literal["sync"]
    mode: Literal["longpoll", "interval"]
    nodes: list[str]
    forgotten: list[str]
    epochs: dict[str, str]
    pairs: list[SyncPair]
    conflicts: int
    tombstones_awaiting_purge: int
    purge_holds: list[PurgeHold]
    purged: int
    anti_entropy: AntiEntropyResult | None
    rounds: dict[str, int]  # feed pages read per source since start
    errors: dict[str, str] = {}  # the last error of each node currently in backoff


class ConflictEntry(Wire, frozen=True):
    """One conflict: the same key written on two nodes; last-writer-wins kept ``winner``."""

    key: str
    winner: Row
    loser: Row
    node: str
    at_ms: int


class ConflictLog(Wire, frozen=True):
    """`GET /v1/conflicts`: the most recent conflicts (oldest first) and the total since start."""

    total: int
    conflicts: list[ConflictEntry]


class ForgetRequest(Wire, frozen=True):
    """`POST /v1/forget`: remove a node from the cluster for good (it holds no purge back)."""

    node: str


class ForgetResponse(Wire, frozen=True):
    node: str
    forgotten: list[str]


class CursorRecord(Wire, frozen=True):
    """One persisted cursor: ``target`` durably applied ``source``'s feed up to ``version``."""

    source: str
    target: str
    source_epoch: str
    target_epoch: str
    version: int


class SyncStateFile(Wire, frozen=True):
    """The sync process's state file (written atomically after acknowledged batches)."""

    cursors: list[CursorRecord]
    forgotten: list[str] = []
