"""The handler's copies of data-node scan pages, revalidated with the node's ETag.

Rule: a copy is kept by request target and serving node, with the node's tag
(`dtm.core.pagetag`), the body and the session header it came with; a read of that target offers
every tag it holds (``If-None-Match``) and a 304 answer is served from the copy its tag names, as
if the node had sent the body again. Copies live within a byte budget, least recently used out
first, and one per node and target (a newer tag replaces the older). What the handler derives
from a body (a list's encoded tasks) is kept with the copy and counted in its size. A copy also
keeps the node's claim it came with (epoch and version), by which a watch of the node may vouch
for it without asking (`dtm.core.pagefresh`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Final, TypeVar

from dtm.core.pagetag import MAX_TAGS

V = TypeVar("V")

VIEW_FACTOR: Final = 2  # a copy's size: its body, plus as much again for what is derived from it


class Copy:
    """One node page as the handler received it."""

    __slots__ = ("body", "epoch", "node", "session", "tag", "target", "version", "views")

    def __init__(
        self,
        target: str,
        node: str,
        tag: str,
        body: bytes,
        session: str | None,
        claim: tuple[str, int] | None = None,
    ):
        self.target = target
        self.node = node
        self.tag = tag
        self.body = body
        self.session = session
        # The node's epoch and version as its answer claimed them (None: not known).
        self.epoch: str | None = None if claim is None else claim[0]
        self.version = 0 if claim is None else claim[1]
        self.views: dict[Hashable, object] = {}

    @property
    def size(self) -> int:
        return VIEW_FACTOR * len(self.body) + len(self.target) + 200


class PageCache:
    """Node pages by (target, tag), within ``max_bytes`` (0: keep nothing)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self._copies: OrderedDict[tuple[str, str], Copy] = OrderedDict()
        self._tags: dict[str, dict[str, str]] = {}  # target -> node -> tag
        self._by_body: dict[int, Copy] = {}

    def __len__(self) -> int:
        return len(self._copies)

    def offer(self, target: str) -> str | None:
        """The If-None-Match value for a read of ``target`` (None: no copy held)."""
        tags = self._tags.get(target)
        if not tags:
            return None
        return ", ".join(list(tags.values())[:MAX_TAGS])

    def get(self, target: str, tag: str | None) -> Copy | None:
        """The copy a 304 answer's ``tag`` names (None: not held, e.g. evicted meanwhile)."""
        copy = self._copies.get((target, tag or ""))
        if copy is not None:
            self.used(copy)
        return copy

    def held(self, target: str) -> list[Copy]:
        """The copies held for ``target`` (one per node at most)."""
        tags = self._tags.get(target)
        if not tags:
            return []
        return [self._copies[(target, tag)] for tag in tags.values()]

    def used(self, copy: Copy) -> None:
        """``copy`` was served: the last to go."""
        self._copies.move_to_end((copy.target, copy.tag))
        self.hits += 1

    def put(self, copy: Copy) -> None:
        """Keep a tagged page its node just served, if it fits the budget."""
        target, node, tag, body = copy.target, copy.node, copy.tag, copy.body
        if copy.size > self.max_bytes // 4:  # one page never crowds out the rest
            return
        old = self._tags.get(target, {}).get(node)
        if old is not None:
            self._drop(self._copies[(target, old)])
        self._copies[(target, tag)] = copy
        self._tags.setdefault(target, {})[node] = tag
        self._by_body[id(body)] = copy
        self.bytes += copy.size
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self._copies.values())))

    def view(self, body: bytes, key: Hashable, derive: Callable[[bytes], V]) -> V:
        """``derive(body)``, kept with the copy whose body this is (computed anew otherwise)."""
        copy = self._by_body.get(id(body))
        if copy is None or copy.body is not body:
            return derive(body)
        if key not in copy.views:
            copy.views[key] = derive(body)
        return copy.views[key]  # type: ignore[return-value]

    def _drop(self, copy: Copy) -> None:
        del self._copies[(copy.target, copy.tag)]
        del self._by_body[id(copy.body)]
        nodes = self._tags[copy.target]
        if nodes.get(copy.node) == copy.tag:
            del nodes[copy.node]
        if not nodes:
            del self._tags[copy.target]
        self.bytes -= copy.size
