"""When two writes of one key were a conflict: changed on two nodes since their last exchange.

Rule: a write ``w`` read from node S (at S's version ``w.version``) and delivered to node T, which
acknowledged it when its last version was ``ack``, conflicts with T's row ``r`` for the same key iff
``r`` is a different write made on another node (a node's own two writes are ordered by its
clock: the later overwrote the earlier), T already held it (``r.version <= ack``), and S had not
been given ``r`` before ``w`` (no acknowledged delivery of ``r`` to S at a version below
``w.version``); the later of the two by ``(hlc, origin)`` is the winner, the other the loser.
A write the sync leaves out because T is known to hold a later write of its key is judged the
same way, as delivered when T was at the last version the sync knows of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from dtm.core.hlc import physical_ms
from dtm.core.order import winner, write_id
from dtm.wire import ConflictEntry, ConflictWrite, Row


@dataclass(frozen=True, slots=True)
class Delivery:
    """An acknowledged delivery: ``row`` (as read from ``source``'s feed) reached ``target``."""

    source: str
    target: str
    row: Row
    ack: int  # the target's last_version when it acknowledged the batch


@dataclass(frozen=True, slots=True)
class Conflict:
    """A key written on two nodes concurrently: last-writer-wins kept ``winner``."""

    key: str
    winner: Row
    loser: Row
    node: str  # where the two writes met
    at_ms: int


def conflict(
    delivered: Delivery, target_row: Row, to_source: Delivery | None, now_ms: int
) -> Conflict | None:
    """Apply the rule to one delivered write, the target's own row, and the delivery (if any)
    of that row back to the delivered write's source."""
    w, r = delivered.row, target_row
    if w.key != r.key or write_id(w) == write_id(r):
        return None
    if w.origin == r.origin:
        return None  # one node made both: its later write overwrote its earlier one
    if r.version > delivered.ack:
        return None  # the target wrote r after it had w: an overwrite, not a conflict
    if (
        to_source is not None
        and write_id(to_source.row) == write_id(r)
        and to_source.ack < w.version
    ):
        return None  # the source had r before it produced w
    win = winner(w, r)
    lose = r if win is w else w
    return Conflict(w.key, win, lose, delivered.target, now_ms)


def write_of(row: Row) -> ConflictWrite:
    """One side of a conflict as the log shows it: its value, stamp (and the stamp's wall time)."""
    return ConflictWrite(row.value, row.deleted, row.hlc, physical_ms(row.hlc), row.origin)


def entry(c: Conflict, seq: int) -> ConflictEntry:
    """The log entry of a conflict, numbered ``seq``."""
    return ConflictEntry(seq, c.key, write_of(c.winner), write_of(c.loser), c.node, c.at_ms)
