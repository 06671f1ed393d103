"""What the sync loop asks its shell to do, and what the shell reports back.

Rule: a work item is a complete description of one call (or one file write); the shell performs
it exactly as described and answers with exactly one event naming that item: its result, or
`Failed`. Nothing here decides anything; `syncloop.SyncLoop` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from dtm.core.repair import Repair
from dtm.core.syncplan import Batch
from dtm.wire import ChangesPage, ReplicateResponse, RowId, SyncStateFile

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40  # the logging module's levels


@dataclass(frozen=True, slots=True, eq=False)
class Fetch:
    """Read ``source``'s feed: `GET /v1/changes?since&limit&wait`."""

    source: str
    since: int
    limit: int
    wait_ms: int
    at_ms: int  # when it was handed out


@dataclass(frozen=True, slots=True, eq=False)
class Send:
    """Deliver ``batch``; if ``look_since`` is set, first read the target's feed from there.
    ``before`` is the target's version as known when the batch was planned."""

    batch: Batch
    look_since: int | None
    before: int | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Purge:
    """Remove exact tombstones from one node: `POST /v1/purge`."""

    node: str
    rids: tuple[RowId, ...]


@dataclass(frozen=True, slots=True, eq=False)
class AntiEntropy:
    """One anti-entropy pass over ``nodes`` (digests, differing buckets, repairs), skipping the
    writes in ``skip`` (tombstones being purged); ``epochs``: each node's epoch as the sync last
    read it (a node found at another one is not repaired: `dtm.core.repair.moved_epochs`)."""

    nodes: tuple[str, ...]
    skip: frozenset[tuple[str, int, str]]
    epochs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class Save:
    """Write the cursor file (atomically) with ``state``."""

    state: SyncStateFile


Work = Fetch | Send | Purge | AntiEntropy | Save


@dataclass(frozen=True, slots=True)
class Note:
    """A line for the log, decided by the loop (``level`` as in `logging`)."""

    level: int
    text: str


def quoted(text: str) -> str:
    """Untrusted text (a node's error message) for a note: JSON-quoted, so it cannot end the
    line or carry control characters."""
    return json.dumps(text)


@dataclass(frozen=True, slots=True)
class Ready:
    """What to do now; call `SyncLoop.ready` again by ``wake_ms`` even if nothing was reported."""

    work: tuple[Work, ...]
    notes: tuple[Note, ...]
    wake_ms: int


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Tick:
    now_ms: int


@dataclass(frozen=True, slots=True)
class Fetched:
    work: Fetch
    page: ChangesPage
    now_ms: int


@dataclass(frozen=True, slots=True)
class Sent:
    work: Send
    looked: ChangesPage | None  # the target's feed read just before writing (if asked)
    resp: ReplicateResponse
    now_ms: int


@dataclass(frozen=True, slots=True)
class Purged:
    work: Purge
    purged: int
    now_ms: int


@dataclass(frozen=True, slots=True)
class Repaired:
    """An anti-entropy pass: each node's (epoch, last_version) from its digest, each repair
    batch with the answer and the target's epoch, and how far it got."""

    work: AntiEntropy
    epochs: dict[str, tuple[str, int]]
    repairs: list[tuple[Repair, ReplicateResponse, str]]
    differing: int
    buckets: int
    error: str | None
    now_ms: int


@dataclass(frozen=True, slots=True)
class Saved:
    work: Save
    now_ms: int


@dataclass(frozen=True, slots=True)
class Failed:
    """A call failed (``node`` named the node at fault, "" for the cursor file). ``paused``: the
    sync process itself was frozen while the call ran, so the node is not to blame."""

    work: Work
    node: str
    error: str
    now_ms: int
    paused: bool = False


@dataclass(frozen=True, slots=True)
class Forget:
    node: str
    now_ms: int


Event = Tick | Fetched | Sent | Purged | Repaired | Saved | Failed | Forget


@dataclass(frozen=True, slots=True)
class LoopConfig:
    """The loop's timing; ``interval_ms`` None means long-poll mode."""

    batch: int = 1000
    wait_ms: int = 5000
    interval_ms: int | None = None
    coalesce_ms: int = 3  # after a page with rows, the next read waits this long: one batch
    applied_delay_ms: int = 50  # an owed empty batch waits this long (later ones join it)
    save_every_ms: int = 50
    purge_every_ms: int = 1000
    anti_entropy_every_ms: int = 30000
    anti_entropy_retry_ms: int = 1000  # a pass that waited for the cursor path: tried again
    backoff_min_ms: int = 100
    backoff_max_ms: int = 5000
    down_wait_cap_ms: int = 500  # long-poll wait while a node is down, so its return is seen
    held_retry_ms: int = 100  # a target held rows back: read the source again after this
    fill_poll_ms: int = 100  # a node a backlog is paged into: its feed read this often (no wait)
    purge_chunk: int = 1000
