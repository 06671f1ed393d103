"""How often the sync reads the feed of a node it is filling (a backlog paged into it).

Rule: while full pages of other nodes' feeds are being delivered to a node (a batch of them in
flight, or queued or answered less than ``poll_ms`` ago), that node's own feed is read at most
once per ``poll_ms``, never while such a batch is in flight, and without waiting: a long poll
there (or a read racing a batch) would be answered by the batch the sync itself just wrote, read
and thrown away (the echo rule moves the cursor over it), while the node's own writes still
leave within ``poll_ms`` of a batch's answer.
"""

from __future__ import annotations

AFTER_ANSWER = 1 << 62  # not before the batch in flight is answered (its answer wakes the loop)


def fill_read_at(
    now: int, filled_at: int | None, read_at: int | None, poll_ms: int, in_flight: bool
) -> int | None:
    """When the node's feed may be read next, without waiting (None: it is not being filled, so
    it is read as usual). ``filled_at``: when a batch of a backlog into it was last queued or
    answered; ``read_at``: when its feed read was last handed out; ``in_flight``: a batch of a
    backlog into it is in flight now."""
    if in_flight:
        return AFTER_ANSWER
    if filled_at is None or now >= filled_at + poll_ms:
        return None
    return now if read_at is None else read_at + poll_ms
