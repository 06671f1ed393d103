"""Reading a component's log file: its last lines, and following it as it grows.

Rule: a log is read from its end (never whole), and a follower reopens the file when it is
rotated (a new inode) or truncated (it shrank), so it never stops at a file supervisord replaced.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import BinaryIO

# Bytes read from the end of a file to find its last lines.
TAIL_WINDOW = 1024 * 1024
FOLLOW_INTERVAL = 0.2


def tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of ``path`` ("" if it does not exist)."""
    if lines <= 0:
        return ""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - TAIL_WINDOW))
            data = f.read()
    except OSError:
        return ""
    text = data.decode(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def follow(path: Path, out: BinaryIO | None = None) -> None:
    """Copy what is appended to ``path`` to ``out`` until interrupted (Ctrl-C)."""
    sink = out if out is not None else sys.stdout.buffer
    f: BinaryIO | None = None
    inode = -1
    try:
        while True:
            if f is None:
                try:
                    f = path.open("rb")
                    inode = os.fstat(f.fileno()).st_ino
                    f.seek(0, os.SEEK_END)
                except OSError:
                    f = None
            if f is not None:
                chunk = f.read()
                if chunk:
                    sink.write(chunk)
                    sink.flush()
                    continue
                if _replaced(path, inode, f.tell()):
                    f.close()
                    f = path.open("rb") if path.exists() else None
                    inode = os.fstat(f.fileno()).st_ino if f is not None else -1
                    continue
            time.sleep(FOLLOW_INTERVAL)
    except KeyboardInterrupt:
        pass
    finally:
        if f is not None:
            f.close()


def _replaced(path: Path, inode: int, pos: int) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return st.st_ino != inode or st.st_size < pos
