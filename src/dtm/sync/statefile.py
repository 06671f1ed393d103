"""The sync process's durable state: its cursors, forgotten nodes and decided purges, in one
JSON file.

Rule: the file is replaced atomically with one fsync (write a temporary file, fsync it, rename
it over the old one), so after a crash it holds the old or the new state, whole. The folder is
not fsynced: a rename lost in a crash leaves the previous file, whose cursors are older, which
means re-delivery (harmless: a repeated row is a no-op), never a skip, and at worst a decided
purge forgotten (a tombstone then spreads again before it is purged again). It only ever holds
cursors that targets acknowledged. It is readable by its owner only (0600).
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
    """Replace the file at ``path`` with ``state``, atomically, with one fsync (mode 0600): a
    crash may undo the rename, which only replays batches the nodes apply as no-ops."""
    write_private(path, wire.encode(state), durable_rename=False)


def save_durably(path: Path, state: wire.SyncStateFile) -> None:
    """Like `save`, and the rename itself made durable (the folder fsynced): for a last save
    on stop and for `dtm sync forget`, which must not be undone by a crash."""
    write_private(path, wire.encode(state))
