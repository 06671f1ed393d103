"""One sync step for one source node: where to read its feed, and what each target receives.

Rule: a cursor (source, target) counts only while both epochs it was recorded at are current
(else it is 0); a step reads the source's feed from the lowest cursor over its reachable targets,
sends each target exactly the rows beyond its own cursor that it is not known to hold already
(never a write back to a node that has it or a later write of its key: no echo; an empty batch
when only the source's version moved), and a cursor moves to a batch's reach only once that
target acknowledged it, and never past a row the target held back (too far ahead of its clock):
that row is sent again.

A page's reach (the source version a batch brings the target up to) is the version of its last row
when the page is full (more may follow), or the page's ``last_version`` when it is complete. Only
a complete page's batch claims its reach for the target's ``applied`` record: a feed keeps each
key's newest version only, so a write at or below a full page's last row that was overwritten
above it is not in that page; once a page ends the feed, every write up to its reach is held.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dtm.wire import ChangesPage, ReplicateRequest, Row

Pair = tuple[str, str]  # (source, target)
WriteId = tuple[int, str]  # (hlc, origin): a write's place in the last-writer-wins order
Holdings = Mapping[str, Mapping[str, WriteId]]  # node -> key -> newest write it is known to hold


def known_held(holdings: Holdings, node: str, row: Row) -> bool:
    """True if ``node`` is known to hold ``row``'s write or a later write of its key."""
    return _held(holdings.get(node, {}).get(row.key), row.hlc, row.origin)


def _held(have: WriteId | None, hlc: int, origin: str) -> bool:
    return have is not None and have >= (hlc, origin)


@dataclass(frozen=True, slots=True)
class Cursor:
    """The target has durably applied the source's feed up to ``version`` (at these epochs)."""

    source_epoch: str
    target_epoch: str
    version: int


@dataclass(frozen=True, slots=True)
class Batch:
    """Rows of ``source``'s feed in ``(since, reach]`` for ``target``, planned at these epochs."""

    source: str
    source_epoch: str
    target: str
    target_epoch: str
    since: int
    reach: int
    rows: tuple[Row, ...]
    complete: bool = True  # read from a page that ends the feed: the request claims the reach

    def request(self, claim: int | None = None) -> ReplicateRequest:
        """The call: ``source_version`` claims the reach if the page was complete, else nothing
        (0: the target's record only ever grows); ``claim`` overrides it (an owed empty batch)."""
        version = claim if claim is not None else self.reach if self.complete else 0
        return ReplicateRequest(
            self.source, self.source_epoch, version, list(self.rows), self.target_epoch
        )


def cursor_of(
    cursors: Mapping[Pair, Cursor], source: str, target: str, epochs: Mapping[str, str]
) -> int:
    """The valid cursor of a pair: 0 unless it was recorded at both nodes' current epochs.

    An epoch not yet learned (a node not contacted since start) is taken on trust from the cursor;
    the first answer of that node corrects it.
    """
    c = cursors.get((source, target))
    if c is None:
        return 0
    if epochs.get(source, c.source_epoch) != c.source_epoch:
        return 0
    if epochs.get(target, c.target_epoch) != c.target_epoch:
        return 0
    return c.version


def fetch_since(
    cursors: Mapping[Pair, Cursor], source: str, targets: Iterable[str], epochs: Mapping[str, str]
) -> int | None:
    """Where to read ``source``'s feed: the lowest valid cursor of the targets (None: no target)."""
    found = [cursor_of(cursors, source, t, epochs) for t in targets if t != source]
    return min(found) if found else None


def page_complete(page: ChangesPage, limit: int) -> bool:
    """The page ends the feed as it was read (not cut at ``limit`` rows, nor at the node's byte
    cap: ``more``)."""
    return not (page.rows and (len(page.rows) >= limit or page.more))


def page_reach(page: ChangesPage, since: int, limit: int) -> int:
    """The source version a page covers: its last row if full, else up to ``last_version``."""
    if not page_complete(page, limit):
        return max(since, page.rows[-1].version)
    top = page.rows[-1].version if page.rows else 0
    return max(since, page.last_version, top)


def plan_batches(
    page: ChangesPage,
    since: int,
    limit: int,
    cursors: Mapping[Pair, Cursor],
    targets: Mapping[str, str],
    epochs: Mapping[str, str],
    holdings: Holdings | None = None,
) -> list[Batch]:
    """The batch each target needs from a page read at ``since`` (targets: name -> epoch).

    A target whose cursor is below ``since`` is skipped (the page does not cover its gap); one whose
    cursor is already at the reach gets nothing; a row the target is known to hold is left out
    (``holdings``, kept per epoch: a wiped node is known to hold nothing).
    """
    held = holdings or {}
    source = page.node
    reach = page_reach(page, since, limit)
    complete = page_complete(page, limit)
    out: list[Batch] = []
    for target, target_epoch in sorted(targets.items()):
        if target == source:
            continue
        c = cursor_of(cursors, source, target, epochs)
        if c < since or c >= reach:
            continue
        have = held.get(target, {})
        rows = tuple(
            r
            for r in page.rows
            if c < r.version <= reach and not _held(have.get(r.key), r.hlc, r.origin)
        )
        out.append(Batch(source, page.epoch, target, target_epoch, c, reach, rows, complete))
    return out


def acked_reach(batch: Batch, held_from: int) -> int:
    """How far an acknowledged batch brings the target: its reach, or just below the first row
    the target held back (``held_from``, 0: none)."""
    if held_from <= 0:
        return batch.reach
    return max(batch.since, min(batch.reach, held_from - 1))


def advance(
    cursors: Mapping[Pair, Cursor], batch: Batch, epochs: Mapping[str, str], held_from: int = 0
) -> Cursor:
    """The pair's cursor once the target acknowledged ``batch`` (holding back from ``held_from``).

    It moves only if the batch was planned at the current epochs and starts at or below the
    current cursor (no gap); it never moves backwards within the same epochs, nor past a row held.
    """
    pair = (batch.source, batch.target)
    old = cursors.get(pair)
    same_epochs = (
        epochs.get(batch.source, batch.source_epoch) == batch.source_epoch
        and epochs.get(batch.target, batch.target_epoch) == batch.target_epoch
    )
    current = cursor_of(cursors, batch.source, batch.target, epochs)
    if old is not None and (old.source_epoch, old.target_epoch) != (
        batch.source_epoch,
        batch.target_epoch,
    ):
        current = 0
    if not same_epochs or batch.since > current:
        return old if old is not None else Cursor(batch.source_epoch, batch.target_epoch, 0)
    return Cursor(
        batch.source_epoch, batch.target_epoch, max(current, acked_reach(batch, held_from))
    )


def lag_versions(
    cursors: Mapping[Pair, Cursor],
    source: str,
    target: str,
    epochs: Mapping[str, str],
    source_last_version: int,
) -> int:
    """How many source versions the target has not yet applied."""
    return max(0, source_last_version - cursor_of(cursors, source, target, epochs))
