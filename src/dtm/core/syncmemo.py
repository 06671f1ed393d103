"""Bounded memories of the sync engine: recent rows per node, what each node is known to hold.

Rule: every memory is capped (the oldest entry goes first); forgetting only ever costs a row sent
again or a conflict not logged, never a row skipped.
"""

from __future__ import annotations

from collections import OrderedDict

from dtm.core.conflicts import Delivery
from dtm.core.syncplan import WriteId
from dtm.wire import Row


class Lru(OrderedDict[str, "Row | Delivery"]):
    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap

    def put(self, key: str, value: Row | Delivery) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.cap:
            self.popitem(last=False)


class Held(OrderedDict[str, WriteId]):
    """The newest write of each key a node is known to hold at its current epoch (bounded: a key
    forgotten is only sent again, which is harmless)."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap

    def note(self, row: Row) -> None:
        wid = (row.hlc, row.origin)
        old = self.get(row.key)
        if old is None or wid > old:
            self[row.key] = wid
        self.move_to_end(row.key)
        while len(self) > self.cap:
            self.popitem(last=False)

    def holds(self, row: Row) -> bool:
        have = self.get(row.key)
        return have is not None and have >= (row.hlc, row.origin)


class Seen(OrderedDict[tuple[str, int, str, int, str], bool]):
    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap

    def put(self, key: tuple[str, int, str, int, str], value: bool) -> None:
        self[key] = value
        while len(self) > self.cap:
            self.popitem(last=False)
