"""Talking to one local supervisord: start it, ask it, tell it, stop it.

Rule: supervisord is reached only through its unix socket (XML-RPC, with a timeout on every
call); a socket that does not answer means supervisord is not running, and whatever it left
behind (pid file, socket, a hung process named in the pid file) is cleaned before a new start.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

import msgspec

from dtm.cluster.layout import RunDir
from dtm.errors import ErrInternal, ErrTimeout, ErrUnavailable

# supervisord fault codes (supervisor.xmlrpc.Faults) that this module handles.
FAULT_BAD_NAME = 10
FAULT_ALREADY_STARTED = 60
FAULT_NOT_RUNNING = 70
FAULT_SHUTDOWN_STATE = 6

# Process states after which a program must be started again (not RUNNING/STARTING/BACKOFF).
DOWN_STATES = frozenset({"STOPPED", "EXITED", "FATAL", "UNKNOWN"})


class ProcInfo(msgspec.Struct, frozen=True, kw_only=True):
    """The part of supervisord's process info that we use."""

    name: str
    group: str
    statename: str
    pid: int = 0
    description: str = ""
    spawnerr: str = ""
    exitstatus: int = 0


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__()
        self._path = path
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        return _UnixConnection(self._path, self._timeout)


class Supervisor:
    """One supervisord, found by its run directory."""

    def __init__(self, run: RunDir, python: str) -> None:
        self.run = run
        self.python = python

    def _proxy(self, timeout: float) -> Any:
        transport = _UnixTransport(str(self.run.socket), timeout)
        return xmlrpc.client.ServerProxy("http://localhost", transport=transport)

    def call(self, method: str, *args: Any, timeout: float = 30.0) -> Any:
        """Call ``supervisor.<method>``; a dead socket is ErrUnavailable."""
        proxy = self._proxy(timeout)
        try:
            return getattr(proxy.supervisor, method)(*args)
        except (OSError, http.client.HTTPException) as exc:
            raise ErrUnavailable(
                f"supervisord does not answer on {self.run.socket}: {exc}"
            ) from None

    # ------------------------------------------------------------ lifecycle

    def alive(self) -> bool:
        """True if supervisord answers on its socket and is running (not shutting down)."""
        if not self.run.socket.exists():
            return False
        try:
            state = self.call("getState", timeout=3.0)
        except (ErrUnavailable, xmlrpc.client.Fault):
            return False
        return isinstance(state, dict) and state.get("statename") == "RUNNING"

    def pid(self) -> int | None:
        """The pid in the pid file, if that process still exists."""
        try:
            pid = int(self.run.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid if _is_our_supervisord(pid, self.run.supervisor_conf) else None

    def clean_stale(self) -> None:
        """Supervisord does not answer: kill a hung one and remove its pid file and socket."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 10.0)
        for path in (self.run.pidfile, self.run.socket):
            path.unlink(missing_ok=True)

    def start_daemon(self, timeout: float = 20.0) -> None:
        """Start supervisord in the background and wait until its socket answers."""
        self.run.check_socket_path()
        proc = subprocess.run(
            [self.python, "-m", "supervisor.supervisord", "-c", str(self.run.supervisor_conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.run.root,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            out = proc.stdout.decode(errors="replace").strip()
            raise ErrUnavailable(f"supervisord did not start (exit {proc.returncode}): {out}")
        deadline = time.monotonic() + timeout
        while not self.alive():
            if time.monotonic() > deadline:
                raise ErrTimeout(f"supervisord did not answer on {self.run.socket} in {timeout}s")
            time.sleep(0.05)

    def shutdown(self, timeout: float = 60.0) -> None:
        """Stop every program, then supervisord itself; wait until its process is gone."""
        pid = self.pid()
        try:
            self.call("stopAllProcesses", True, timeout=timeout)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode != FAULT_SHUTDOWN_STATE:
                raise ErrInternal(f"supervisord could not stop programs: {fault}") from None
        try:
            self.call("shutdown", timeout=10.0)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode != FAULT_SHUTDOWN_STATE:
                raise ErrInternal(f"supervisord could not shut down: {fault}") from None
        except ErrUnavailable:
            pass  # it closed the socket while going away
        if pid is not None and not _wait_gone(pid, timeout):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 10.0)
        for path in (self.run.pidfile, self.run.socket):
            path.unlink(missing_ok=True)

    # ------------------------------------------------------------ programs

    def processes(self) -> list[ProcInfo]:
        infos = self.call("getAllProcessInfo", timeout=10.0)
        return msgspec.convert(infos, list[ProcInfo])

    def start(self, name: str) -> None:
        """Ask supervisord to start ``name`` without waiting; already started is fine."""
        try:
            self.call("startProcess", name, False, timeout=10.0)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode != FAULT_ALREADY_STARTED:
                raise ErrUnavailable(f"supervisord could not start {name}: {fault}") from None

    def update(self) -> tuple[list[str], list[str], list[str]]:
        """Re-read the config file and apply it: add, restart changed, remove. Returns the names."""
        result = self.call("reloadConfig", timeout=10.0)
        added, changed, removed = (list(map(str, names)) for names in result[0])
        for name in removed + changed:
            try:
                self.call("stopProcessGroup", name, True, timeout=60.0)
            except xmlrpc.client.Fault as fault:
                if fault.faultCode not in (FAULT_BAD_NAME, FAULT_NOT_RUNNING):
                    raise ErrInternal(f"supervisord could not stop {name}: {fault}") from None
            self.call("removeProcessGroup", name, timeout=10.0)
        for name in changed + added:
            self.call("addProcessGroup", name, timeout=10.0)
        return added, changed, removed


def _is_our_supervisord(pid: int, conf: Path) -> bool:
    """True if ``pid`` is a supervisord started with ``conf`` (a pid may have been reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the pid file
    return b"supervisor.supervisord" in cmdline and str(conf).encode() in cmdline


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if _is_zombie(pid):
            return True
        time.sleep(0.05)
    return False


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]
