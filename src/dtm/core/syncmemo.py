"""Bounded memories of the sync engine: recent rows per node, what each node is known to hold.

Rule: every memory is capped: it keeps the entries of at least the last ``cap`` keys it took in
and never more than ``2 * cap`` (two generations: the young one takes every entry, and when it
holds ``cap`` keys it becomes the old one and the previous old one is forgotten, whole);
forgetting only ever costs a row sent again or a conflict not logged, never a row skipped. A page
or a batch is taken in at once, in its order.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Generic, TypeVar

from dtm.core.conflicts import Delivery
from dtm.core.syncplan import WriteId
from dtm.wire import Row

V = TypeVar("V")


class _Generations(Mapping[str, V], Generic[V]):
    """The two generations; a lookup finds the young entry first."""

    def __init__(self, cap: int) -> None:
        self.cap = max(1, cap)
        self.young: dict[str, V] = {}
        self.old: dict[str, V] = {}

    def _age(self) -> dict[str, V]:
        """The young generation is full: it becomes the old one; the new young one, empty."""
        self.old, self.young = self.young, {}
        return self.young

    def get(self, key: str, default: V | None = None) -> V | None:  # type: ignore[override]
        found = self.young.get(key)
        if found is None:
            found = self.old.get(key)
        return default if found is None else found

    def __getitem__(self, key: str) -> V:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def __iter__(self) -> Iterator[str]:
        yield from self.young
        yield from (k for k in self.old if k not in self.young)

    def __len__(self) -> int:
        return len(self.young) + sum(1 for k in self.old if k not in self.young)

    def __bool__(self) -> bool:
        return bool(self.young or self.old)

    def clear(self) -> None:
        self.young, self.old = {}, {}


class Lru(_Generations[Row]):
    """The newest rows read from one node's feed, by key."""

    def put_all(self, rows: Sequence[Row]) -> None:
        young, cap = self.young, self.cap
        if len(young) + len(rows) < cap:  # the young generation takes them all
            young.update({row.key: row for row in rows})
            return
        for row in rows:
            young[row.key] = row
            if len(young) >= cap:
                young = self._age()


_Receipt = tuple[str, str, int]  # (source, target, ack) of one acknowledged batch


class Inbox(_Generations[tuple[Row, _Receipt]]):
    """The newest acknowledged delivery into one node, by key (one receipt shared per batch)."""

    def put_all(self, source: str, target: str, ack: int, rows: Sequence[Row]) -> None:
        receipt = (source, target, ack)
        young, cap = self.young, self.cap
        if len(young) + len(rows) < cap:
            young.update({row.key: (row, receipt) for row in rows})
            return
        for row in rows:
            young[row.key] = (row, receipt)
            if len(young) >= cap:
                young = self._age()

    def delivery(self, key: str) -> Delivery | None:
        found = self.get(key)
        if found is None:
            return None
        row, (source, target, ack) = found
        return Delivery(source, target, row, ack)


class Held(_Generations[WriteId]):
    """The newest write of each key a node is known to hold at its current epoch (bounded: a key
    forgotten is only sent again, which is harmless)."""

    def note_all(self, rows: Sequence[Row]) -> None:
        young, old, cap = self.young, self.old, self.cap
        room = cap - len(young)  # keys the young generation takes before it is full
        for row in rows:
            key = row.key
            wid = (row.hlc, row.origin)
            have = young.get(key)
            if have is None:
                have = old.get(key)
                if have is not None and have > wid:
                    wid = have  # still the newest known: now young again
                room -= 1
            elif have >= wid:
                continue
            young[key] = wid
            if room <= 0:
                young = self._age()
                old, room = self.old, cap

    def holds(self, row: Row) -> bool:
        have = self.get(row.key)
        return have is not None and have >= (row.hlc, row.origin)

    def holds_all(self, rows: Iterable[Row]) -> bool:
        young, old = self.young, self.old
        for row in rows:
            have = young.get(row.key)
            if have is None:
                have = old.get(row.key)
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
