"""Helpers of the storage tests: a manual clock, row builders and a backend opener."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

from dtm.core.hlc import pack
from dtm.storage.base import Store
from dtm.storage.memory import MemoryStore
from dtm.storage.sqlite import SqliteStore
from dtm.wire import NULL, Row

BACKENDS = ("memory", "sqlite")
T0 = 1_700_000_000_000  # the manual clock's start, in ms


class ManualClock:
    """A physical clock the test moves by hand (read from the writer thread too)."""

    def __init__(self, now_ms: int = T0) -> None:
        self.now = now_ms

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


def raw(value: Any) -> msgspec.Raw:
    """A JSON value as the bytes a node stores."""
    return msgspec.Raw(msgspec.json.encode(value))


def remote(
    key: str,
    value: Any,
    hlc_ms: int,
    origin: str = "n2",
    *,
    deleted: bool = False,
    version: int = 1,
) -> Row:
    """A row as another node's feed would carry it (its version is that node's own)."""
    body = NULL if deleted else raw(value)
    return Row(key, body, deleted, version, pack(hlc_ms), origin)


def open_backend(
    backend: str, path: Path, node: str, clock: ManualClock, epoch: str, **kw: Any
) -> Store:
    """A store of the named backend; the SQLite one lives at ``path``."""
    if backend == "memory":
        return MemoryStore(node, epoch, clock)
    return SqliteStore.open(path, node, clock, new_epoch=lambda: epoch, **kw)


StoreFactory = Callable[..., Awaitable[Store]]
