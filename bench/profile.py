"""Where a process's time goes: py-spy sampling it while a load runs.

Rule: a profile is a few seconds of py-spy on one pid, summarised as the frames with the most
samples on top of the stack (self) and anywhere on it (inclusive, without the frames every
sample of a service sits under); without py-spy there is no profile and the page says so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOTS = ("runpy", "dtm/run.py", "dtm/edge.py", "asyncio/", "uvloop/", "threading.py", "<module>")


def _short(frame: str) -> str:
    func, _, where = frame.strip().partition(" (")
    path = where.split(":")[0].rstrip(")")
    for marker in ("site-packages/", "src/", "lib/python3."):
        path = path.split(marker, 1)[-1]
    return f"{func} ({path})"


def summarise(raw: str, top: int = 5) -> str:
    """One line from py-spy's raw output (collapsed stacks with a count each)."""
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            frames = [_short(f) for f in stack.split(";")]
            own[frames[-1]] += int(count)
            under.update({f: int(count) for f in set(frames) if not any(r in f for r in ROOTS)})
    total = sum(own.values())
    if not total:
        return "no samples"
    selfs = ", ".join(f"{f} {n / total:.0%}" for f, n in own.most_common(top))
    incl = ", ".join(f"{f} {n / total:.0%}" for f, n in under.most_common(top))
    return f"{total} samples; self: {selfs}; inclusive: {incl}"


class Recorder:
    """py-spy on ``pid`` for ``seconds`` in the background (or, with ``argv``, on a command from
    its first instruction); `finish` waits and summarises."""

    def __init__(self, pid: int, seconds: float, out: Path, *argv: str, **env: str) -> None:
        binary = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
        self.out = out
        what = ["--", *argv] if argv else ["-p", str(pid), "-d", str(max(1, round(seconds)))]
        cmd = [binary or "", "record", "-r", "500", "-f", "raw", "-o", str(out), "--nonblocking"]
        pipe = subprocess.PIPE
        self.proc = (
            subprocess.Popen([*cmd, *what], stdout=pipe, stderr=pipe, env=env or None)
            if binary
            else None
        )

    def finish(self) -> str:
        if self.proc is None:
            return "unprofiled (py-spy is not installed: `make bench-deps`)"
        err = self.proc.communicate(timeout=130)[1].decode().strip().splitlines() or ["?"]
        return summarise(self.out.read_text()) if self.out.exists() else f"unprofiled ({err[-1]})"
