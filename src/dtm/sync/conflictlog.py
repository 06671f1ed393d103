"""The sync process's conflict log on disk: a small SQLite file in its data folder.

Rule: every conflict found is appended (one transaction per batch of them, synchronous=NORMAL: a
crash may lose the last entries, never corrupt the file); the log keeps the newest ``cap``
entries and numbers every entry ever written (``seq``), so ``total`` survives a restart; entries
are stored as their exact wire JSON, so what `/v1/conflicts` serves is what was written.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from dtm import wire
from dtm.core.conflicts import Conflict, entry
from dtm.errors import ErrSyntaxInvalidArgs

DEFAULT_CAP = 1000
MAX_ENTRY_BYTES = 4 * 1024 * 1024

SCHEMA = """
CREATE TABLE IF NOT EXISTS conflicts (seq INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL,
    key TEXT NOT NULL, entry BLOB NOT NULL);
"""


class ConflictStore:
    """Append conflicts, read the newest; safe to call from any thread."""

    def __init__(self, path: Path, cap: int = DEFAULT_CAP) -> None:
        self.path = path
        self.cap = cap
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not path.exists():
                path.touch(mode=0o600)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM conflicts").fetchone()
        except sqlite3.Error as exc:
            raise ErrSyntaxInvalidArgs(f"conflict log {str(path)!r}: {exc}") from None
        self.total: int = row[0]

    def append(self, found: Iterable[Conflict]) -> list[wire.ConflictEntry]:
        """Write ``found`` as the next entries; drop the oldest beyond the cap."""
        with self._lock:
            out: list[wire.ConflictEntry] = []
            for c in found:
                out.append(entry(c, self.total + len(out) + 1))
            if not out:
                return out
            try:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT INTO conflicts (seq, at_ms, key, entry) VALUES (?, ?, ?, ?)",
                    [(e.seq, e.at_ms, e.key, wire.encode(e)) for e in out],
                )
                last = out[-1].seq
                self._db.execute("DELETE FROM conflicts WHERE seq <= ?", (last - self.cap,))
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise OSError(f"conflict log {self.path}: {exc}") from None
            self.total = last
            return out

    def read(self, limit: int) -> wire.ConflictLog:
        """The newest ``limit`` entries, oldest first, and the total ever recorded."""
        with self._lock:
            rows = self._db.execute(
                "SELECT entry FROM conflicts ORDER BY seq DESC LIMIT ?", (max(0, limit),)
            ).fetchall()
            total = self.total
        entries = [
            wire.decode(r[0], wire.ConflictEntry, limit=MAX_ENTRY_BYTES, what="conflict log")
            for r in reversed(rows)
        ]
        return wire.ConflictLog(total, entries)

    def close(self) -> None:
        with self._lock:
            self._db.close()
