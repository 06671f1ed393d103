"""The machine the suite runs on: its private network, its two cores, /proc, its versions.

Rule: the suite runs in a private network namespace with only loopback when it can (every
server of every system then shares that loopback and nothing else on the machine sees it);
servers run on the server core, the suite and its load generator on the other.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER_CPU, LOAD_CPU = "0", "1"
CLONE_NEWNET, OUTPUTS = 0x40000000, (":!docs/benchmarks.md", ":!docs/img", ":!bench/results.json")


def private_network() -> str | None:
    """Move this process (and every child it starts later) into a new network namespace with
    loopback up. None when done, else why not (the suite then stays where it is)."""
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is missing"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        return f"unshare(CLONE_NEWNET) failed: {os.strerror(ctypes.get_errno())}"
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)
    return None


PIN = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def pin_self() -> None:
    """The suite (its clients, and wrk) on the load core."""
    if PIN:
        os.sched_setaffinity(0, {int(LOAD_CPU)})


def pin(pid: int) -> None:
    """Every thread of a running server onto the server core."""
    if PIN:
        argv = ["taskset", "-a", "-p", "-c", SERVER_CPU, str(pid)]
        subprocess.run(argv, capture_output=True, check=False)


def pinned(argv: list[str], cpus: str = SERVER_CPU) -> list[str]:
    return ["taskset", "-c", cpus, *argv] if PIN else argv


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/PID/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    """The peak resident set (VmHWM) of a live process, in MiB (0 when it is gone)."""
    with contextlib.suppress(OSError):
        found = re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
        return int(found.group(1)) / 1024 if found else 0.0
    return 0.0


def _die_with_parent() -> None:
    """In a child before exec: SIGTERM it when the suite dies, so no server outlives it."""
    ctypes.CDLL(None).prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM


def spawn(argv: list[str], log: Path | None = None, **env: str) -> subprocess.Popen[bytes]:
    """A server on the server core, its output in ``log``, dying with the suite."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (the child holds it)
    return subprocess.Popen(
        pinned(argv),
        env=env or None,
        stdout=out,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,
    )


def stop(procs: Iterable[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process, SIGKILL it after 5 s."""
    for p in procs:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def _first_line(argv: list[str], words: int) -> str:
    done = subprocess.run(argv, capture_output=True, text=True) if shutil.which(argv[0]) else None
    lines = (done.stdout or done.stderr).strip().splitlines() if done else []
    return " ".join(lines[0].split()[:words]) if lines else "not installed"


def _version(dist: str) -> str:
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        return importlib.metadata.version(dist)
    return "not installed"


def describe() -> dict[str, str]:
    """CPU, cores, memory, kernel, Python and library versions, tools and the git commit."""
    cpu = re.search(r"model name\s*: (.*)", Path("/proc/cpuinfo").read_text())
    kib = int(Path("/proc/meminfo").read_text().split()[1])
    git, out = ["git", "-C", str(ROOT)], subprocess.PIPE
    commit = subprocess.run([*git, "rev-parse", "--short=12", "HEAD"], stdout=out)
    status = [*git, "status", "--porcelain", "-uno", ".", *OUTPUTS]  # its own outputs aside
    dirty = subprocess.run(status, stdout=out).stdout
    return {
        "cpu": cpu.group(1) if cpu else "",
        "cores": str(os.cpu_count()),
        "memory": f"{kib / 1024 / 1024:.0f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        **{lib: _version(lib) for lib in ("aiohttp", "uvloop", "msgspec", "matplotlib", "py-spy")},
        "wrk": _first_line(["wrk", "-v"], 2),
        "git commit": commit.stdout.decode().strip() + (" (uncommitted changes)" if dirty else ""),
    }
