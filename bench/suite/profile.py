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
    roots present in nearly every sample), in % of busy samples."""
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
        own[frames[-1]] += n
        for f in set(frames):
            if not f.startswith(("_call_with_frames_removed", "_find_and_load", "_load_unlocked")):
                under[f] += n
    if not total:
        return "no samples"
    selfs = ", ".join(f"{name} {n / total:.0%}" for name, n in own.most_common(top))
    inner = [(f, n) for f, n in under.most_common() if n / total < 0.9][:top]
    incl = ", ".join(f"{name} {n / total:.0%}" for name, n in inner)
    return f"{total} samples; self: {selfs}; inclusive: {incl}"


def profile_during(pid: int, seconds: int, load: Callable[[], object], out: Path) -> str:
    """Sample ``pid`` with py-spy for ``seconds`` while ``load()`` runs; the summary line."""
    spy = env.py_spy()
    if spy is None:
        return "unprofiled (py-spy could not be installed)"
    argv = [spy, "record", "-p", str(pid), "-d", str(seconds), "-r", "200", "-f", "raw"]
    argv += ["-o", str(out), "--nonblocking"]
    result: list[subprocess.CompletedProcess[str]] = []

    def record() -> None:
        result.append(
            subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=False)
        )

    th = threading.Thread(target=record)
    th.start()
    try:
        load()
    finally:
        th.join(seconds + 40)
    if not out.exists():
        err = result[0].stderr.strip().splitlines()[-1:] if result else ["no output"]
        return f"unprofiled (py-spy failed: {err[0] if err else 'no output'})"
    return summarise(out.read_text())


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
