"""Bounded memories of the sync engine: recent rows per node, what each node is known to hold.

Rule: every memory is capped (the oldest entry goes first); forgetting only ever costs a row sent
again or a conflict not logged, never a row skipped. A page or a batch is taken in at once, in
its order, and the memory trimmed after it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from dtm.core.conflicts import Delivery
from dtm.core.syncplan import WriteId
from dtm.wire import Row


class Lru(OrderedDict[str, Row]):
    """The newest rows read from one node's feed, by key."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap

    def put(self, key: str, value: Row) -> None:
        self.put_all((value,))

    def put_all(self, rows: Iterable[Row]) -> None:
        move = self.move_to_end
        for row in rows:
            key = row.key
            self[key] = row
            move(key)
        pop = self.popitem
        for _ in range(len(self) - self.cap):
            pop(last=False)


_Receipt = tuple[str, str, int]  # (source, target, ack) of one acknowledged batch


class Inbox(OrderedDict[str, tuple[Row, _Receipt]]):
    """The newest acknowledged delivery into one node, by key (one receipt shared per batch)."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap

    def put_all(self, source: str, target: str, ack: int, rows: Iterable[Row]) -> None:
        receipt = (source, target, ack)
        move = self.move_to_end
        for row in rows:
            key = row.key
            self[key] = (row, receipt)
            move(key)
        pop = self.popitem
        for _ in range(len(self) - self.cap):
            pop(last=False)

    def delivery(self, key: str) -> Delivery | None:
        found = self.get(key)
        if found is None:
            return None
        row, (source, target, ack) = found
        return Delivery(source, target, row, ack)


class Held(OrderedDict[str, WriteId]):
    """The newest write of each key a node is known to hold at its current epoch (bounded: a key
    forgotten is only sent again, which is harmless)."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap

    def note(self, row: Row) -> None:
        self.note_all((row,))

    def note_all(self, rows: Iterable[Row]) -> None:
        get, move = self.get, self.move_to_end
        for row in rows:
            key = row.key
            wid = (row.hlc, row.origin)
            old = get(key)
            if old is None:
                self[key] = wid  # a new key goes last already
                continue
            if wid > old:
                self[key] = wid
            move(key)
        pop = self.popitem
        for _ in range(len(self) - self.cap):
            pop(last=False)

    def holds(self, row: Row) -> bool:
        have = self.get(row.key)
        return have is not None and have >= (row.hlc, row.origin)

    def holds_all(self, rows: Iterable[Row]) -> bool:
        get = self.get
        for row in rows:
            have = get(row.key)
            if have is None or have < (row.hlc, row.origin):
                return False
        return True


class Seen(OrderedDict[tuple[str, int, str, int, str], bool]):
    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap

    def put(self, key: tuple[str, int, str, int, str], value: bool) -> None:
        self[key] = value
        while len(self) > self.cap:
            self.popitem(last=False)
