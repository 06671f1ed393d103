"""Replacing a small file so that a crash leaves the old or the new content, never a mix.

Rule: write a private temporary file beside the target, fsync it, rename it over the target,
then fsync the folder (unless the caller can lose the rename: a cursor saved again soon); the
file is mode 0600 from its first byte (the cluster's secrets, cursors and users are nobody
else's to read).
"""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, data: bytes, durable_rename: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically, mode 0600; with ``durable_rename`` the rename
    itself survives a crash too (the folder is fsynced)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an older temporary file may have been left with another mode
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    if not durable_rename:
        return
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
