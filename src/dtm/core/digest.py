"""Digests of a store's rows, for anti-entropy: equal stores have equal digests.

Rule: a row belongs to bucket ``crc32(key) % buckets``; a bucket's digest is the XOR of the
8-byte BLAKE2b of ``key, hlc, origin, deleted`` of its rows (order-free, so any scan order works);
value bytes are not hashed, since ``(hlc, origin)`` names the write that produced them.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable

from dtm.wire import Row

MAX_BUCKETS = 4096
DEFAULT_BUCKETS = 256


def bucket_of(key: str, buckets: int) -> int:
    """The bucket a key falls in."""
    return zlib.crc32(key.encode()) % buckets


def row_hash(row: Row) -> int:
    """A 64-bit hash of a row's write identity."""
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{row.key}\0{row.hlc}\0{row.origin}\0{int(row.deleted)}".encode())
    return int.from_bytes(h.digest(), "big")


def digest(rows: Iterable[Row], buckets: int) -> list[str]:
    """One hex digest per bucket ("0000000000000000" for an empty bucket)."""
    acc = [0] * buckets
    for row in rows:
        acc[bucket_of(row.key, buckets)] ^= row_hash(row)
    return [f"{x:016x}" for x in acc]
