"""Where a component's time goes: py-spy sampling a live process while a load runs.

Rule: one profile is a few seconds of py-spy on one pid during one load run, summarised as the
functions with the most samples on top of the stack (self time) and the share of busy samples
spent under a few telling frames; no profile is taken when py-spy is not there.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.suite import env

# Frames under which every sample of a service sits: left out of the inclusive list.
_ROOTS = (
    "(<frozen runpy>)",
    "(dtm/run.py)",
    "(asyncio/runners.py)",
    "(asyncio/events.py)",
    "(asyncio/base_events.py)",
    "(uvloop/__init__.py)",
    "(threading.py)",
)
_IMPORT_MACHINERY = ("_call_with_frames_removed", "_find_and_load", "_load_unlocked")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


def _short(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if m is None:
        return frame.strip()
    path = m.group("file")
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({path})"


def summarise(raw: str, top: int = 5) -> str:
    """One line from a py-spy raw (collapsed stacks) file: the frames with the most samples on
    top of the stack (self), and the frames most often anywhere on it (inclusive, leaving out the
    process's roots: runpy, the launcher, the event loop), in % of busy samples."""
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";")]
        top_frame = frames[-1]
        if top_frame.startswith("Runner.run ("):
            top_frame = "the event loop itself (uvloop, in C)"
        own[top_frame] += n
        for f in set(frames):
            root = f.endswith(_ROOTS) or (f.startswith(("main (", "serve (")) and "main.py" in f)
            if not root and not f.startswith(_IMPORT_MACHINERY):
                under[f] += n
    if not total:
        return "no samples"
    selfs = ", ".join(f"{name} {n / total:.0%}" for name, n in own.most_common(top))
    inner = [(f, n) for f, n in under.most_common() if n / total < 0.85][:top]  # no wrappers
    incl = ", ".join(f"{name} {n / total:.0%}" for name, n in inner)
    return f"{total} samples; self: {selfs}; inclusive: {incl}"


class Recorder:
    """py-spy sampling one pid in the background for ``seconds``; `finish` gives the summary."""

    def __init__(self, pid: int, seconds: int, out: Path) -> None:
        self.out = out
        self.seconds = seconds
        self.error = ""
        self._thread: threading.Thread | None = None
        spy = env.py_spy()
        if spy is None:
            self.error = "unprofiled (py-spy could not be installed)"
            return
        argv = [spy, "record", "-p", str(pid), "-d", str(seconds), "-r", "200", "-f", "raw"]
        argv += ["-o", str(out), "--nonblocking"]

        def record() -> None:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=seconds + 30, check=False
            )
            if done.returncode != 0:
                tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
                self.error = f"unprofiled (py-spy failed: {tail[0]})"

        self._thread = threading.Thread(target=record, daemon=True)
        self._thread.start()

    def finish(self) -> str:
        if self._thread is not None:
            self._thread.join(self.seconds + 40)
        if self.error:
            return self.error
        if not self.out.exists():
            return "unprofiled (py-spy wrote nothing)"
        return summarise(self.out.read_text())


def profile_during(pid: int, seconds: int, load: Callable[[], object], out: Path) -> str:
    """Sample ``pid`` with py-spy for ``seconds`` while ``load()`` runs; the summary line."""
    rec = Recorder(pid, seconds, out)
    try:
        load()
    finally:
        summary = rec.finish()
    return summary


def profile_command(argv: list[str], envv: dict[str, str], out: Path) -> str:
    """Run ``argv`` under py-spy (from its first instruction); the summary line."""
    spy = env.py_spy()
    if spy is None:
        return "unprofiled (py-spy could not be installed)"
    cmd = [spy, "record", "-r", "1000", "-f", "raw", "-o", str(out), "--", *argv]
    proc = subprocess.run(cmd, env=envv, capture_output=True, text=True, timeout=120, check=False)
    if not out.exists():
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        return f"unprofiled (py-spy failed: {tail[0]})"
    return summarise(out.read_text())
