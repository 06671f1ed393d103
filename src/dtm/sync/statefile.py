"""The sync process's durable state: its cursors and forgotten nodes, in one JSON file.

Rule: the file is replaced atomically (write a temporary file, fsync it, rename it over the old
one, fsync the directory), so after a crash it holds either the old or the new state, whole; it
only ever holds cursors that targets acknowledged, so re-reading it means re-delivery, never a skip.
It is readable by its owner only (0600).
"""

from __future__ import annotations

from pathlib import Path

from dtm import wire
from dtm.errors import DtmError, ErrSyntaxInvalidArgs
from dtm.files import write_private

MAX_STATE_BYTES = 64 * 1024 * 1024


def load(path: Path) -> wire.SyncStateFile:
    """The saved state, or an empty one if there is no file yet."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return wire.SyncStateFile([], [])
    except OSError as exc:
        raise ErrSyntaxInvalidArgs(f"cannot read sync state {str(path)!r}: {exc}") from None
    try:
        return wire.decode(data, wire.SyncStateFile, limit=MAX_STATE_BYTES, what="sync state")
    except DtmError as exc:
        raise ErrSyntaxInvalidArgs(f"sync state {str(path)!r}: {exc.message}") from None


def save(path: Path, state: wire.SyncStateFile) -> None:
    """Replace the file at ``path`` with ``state``, atomically and durably (mode 0600)."""
    write_private(path, wire.encode(state))
