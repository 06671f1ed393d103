"""The machine the suite runs on: installing what is missing, pinning to cores, reading /proc.

Rule: a missing Debian tool is installed with `apt-get update` (once) and `apt-get install -y`,
a missing Python library with pip into the running interpreter, only when ``allow_install`` is
set; anything that still is not there makes its measurement "not measured", never a crash.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_apt_updated = False
allow_install = True


def ensure_apt(pkg: str, binary: str) -> bool:
    """True when ``binary`` is on PATH, installing Debian's ``pkg`` first if it is missing."""
    global _apt_updated
    if shutil.which(binary):
        return True
    if not allow_install or not shutil.which("apt-get"):
        return False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"  installing {pkg} (for {binary}) with apt-get ...", flush=True)
    if not _apt_updated:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        _apt_updated = True
    subprocess.run(
        ["apt-get", "install", "-y", "-q", pkg], env=env, capture_output=True, check=False
    )
    return shutil.which(binary) is not None


def ensure_pip(module: str, requirement: str) -> bool:
    """True when ``module`` imports, pip-installing ``requirement`` first if it is missing."""
    if importlib.util.find_spec(module) is not None:
        return True
    if not allow_install:
        return False
    print(f"  installing {requirement} with pip ...", flush=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", requirement],
        capture_output=True,
        check=False,
    )
    importlib.invalidate_caches()
    return importlib.util.find_spec(module) is not None


def py_spy() -> str | None:
    """The py-spy binary (from the venv's bin or PATH), installed from PyPI if missing."""
    here = Path(sys.executable).parent / "py-spy"
    if here.exists():
        return str(here)
    found = shutil.which("py-spy")
    if found:
        return found
    if ensure_pip("py_spy", "py-spy>=0.3") and here.exists():
        return str(here)
    return shutil.which("py-spy")


# ---------------------------------------------------------------- cores and /proc

SERVER_CPU = "0"
LOAD_CPU = "1"


def can_pin() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def pin(pid: int, cpus: str) -> None:
    """Pin a running process (all its threads) to ``cpus``; silently nothing if impossible."""
    if can_pin():
        subprocess.run(
            ["taskset", "-a", "-p", "-c", cpus, str(pid)], capture_output=True, check=False
        )


def pinned(argv: list[str], cpus: str) -> list[str]:
    """``argv`` run under taskset on ``cpus`` when pinning is possible."""
    return ["taskset", "-c", cpus, *argv] if can_pin() else argv


def peak_rss_mib(pid: int) -> float | None:
    """The peak resident set (VmHWM) of a live process, in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- the header of the page


def _run(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (out.stdout or out.stderr).strip()


def _first_words(argv: list[str], n: int) -> str:
    """The first ``n`` words of a tool's version line, or "" when it is not installed."""
    if not shutil.which(argv[0]):
        return ""
    lines = _run(argv).splitlines()
    return " ".join(lines[0].split()[:n]) if lines else ""


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, str]:
    """CPU, cores, memory, kernel, Python and library versions, tools and the git commit."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    commit = _run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"])
    dirty = _run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    info = {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "aiohttp": _version("aiohttp"),
        "uvloop": _version("uvloop"),
        "msgspec": _version("msgspec"),
        "matplotlib": _version("matplotlib"),
        "wrk": _first_words(["wrk", "-v"], 2),
        "redis": _first_words(["redis-server", "--version"], 3),
        "haproxy": _first_words(["haproxy", "-v"], 3),
        "hyperfine": _first_words(["hyperfine", "--version"], 2),
        "git_commit": commit + (" (with uncommitted changes)" if dirty else ""),
    }
    return {k: v or "not installed" for k, v in info.items()}
