"""The real dtm processes of one run, each on its own namespace host, from one cluster TOML.

Every component binds its host's address (the TOML names them); each listens on a fixed port,
which is safe because every host is a private network namespace. The harness reaches each one
from the root namespace over the bridge, with the cluster credential on internal endpoints.
`stop_all()` continues and kills every process this object started, whatever state it is in.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chaos.net import Hosts

PORTS = {"balancer": 7401, "handler": 7400, "sync": 7420, "node": 7411}
# As deployed (deploy/swarm): two balancers, which each handler fails over between, and two
# handlers, which each client fails over between (as `todo` does with several URLs).
BALANCERS = ("balancer", "balancer2")
HANDLERS = ("handler", "handler2")
SERVICES = (*BALANCERS, *HANDLERS, "sync")
# The second instance of a component: same config section, its own host (`--listen`).
SECOND = {"balancer2": "balancer", "handler2": "handler"}
# The handler acknowledges a write once this many nodes hold it (dtm.handler.copies).
WRITE_COPIES = 2


class Proc:
    def __init__(
        self, name: str, argv: list[str], log: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self._logf = open(log, "ab")  # noqa: SIM115 (closed in stop)
        env = dict(os.environ, DTM_DIE_WITH_PARENT="1", PYTHONUNBUFFERED="1", **(extra_env or {}))
        self.popen = subprocess.Popen(
            argv, stdout=self._logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
        self.paused = False

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, sig)
        self.paused = sig == signal.SIGSTOP or (self.paused and sig != signal.SIGCONT)

    def stop(self, graceful: bool = True) -> None:
        if self.alive():
            self.signal(signal.SIGCONT)
            self.popen.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
            try:
                self.popen.wait(10 if graceful else 5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._logf.close()


def http_json(
    method: str, url: str, auth: str | None = None, timeout: float = 5.0
) -> tuple[int, Any]:
    """One request from the root namespace; (status, decoded body or None)."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        headers = {"Authorization": auth} if auth else {}
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        try:
            return resp.status, json.loads(body) if body else None
        except ValueError:
            return resp.status, None
    finally:
        conn.close()


class Cluster:
    """The cluster of one run: config, credential, users and processes."""

    def __init__(self, root: Path, hosts: Hosts, nodes: list[str]) -> None:
        self.root = root
        self.hosts = hosts
        self.nodes = nodes
        self.procs: dict[str, Proc] = {}
        self._all: list[Proc] = []
        self.offsets: dict[str, int] = {n: 0 for n in nodes}
        root.mkdir(parents=True, exist_ok=True)
        (root / "logs").mkdir(exist_ok=True)
        self.config = root / "cluster.toml"
        self.secret = "chaos-" + secrets.token_urlsafe(24)
        fd = os.open(root / "secret", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.secret + "\n")
        self.write_config()

    @property
    def auth(self) -> str:
        return f"Bearer {self.secret}"

    def kind(self, component: str) -> str:
        """What ``component`` runs: "node", "balancer", "handler" or "sync"."""
        return "node" if component in self.nodes else SECOND.get(component, component)

    def url(self, component: str) -> str:
        return f"http://{self.hosts.addr[component]}:{PORTS[self.kind(component)]}"

    def write_config(self) -> None:
        lines = ["[cluster]", 'data_dir = "data"', 'log_dir = "logs"', 'secret_file = "secret"', ""]
        for n in self.nodes:
            lines += ["[[node]]", f'name = "{n}"', f'host = "{self.hosts.addr[n]}"']
            lines += [f"port = {PORTS['node']}", f"clock_offset_ms = {self.offsets[n]}", ""]
        for comp in ("balancer", "handler", "sync"):
            lines += [f"[{comp}]", f'host = "{self.hosts.addr[comp]}"', f"port = {PORTS[comp]}"]
            if comp == "handler":  # a wiped node must not take an acknowledged write with it
                lines.append(f"write_copies = {WRITE_COPIES}")
                each = [f'"{self.hosts.addr[b]}:{PORTS["balancer"]}"' for b in BALANCERS]
                lines.append(f"balancers = [{', '.join(each)}]")
            lines.append("")
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text("\n".join(lines))
        tmp.replace(self.config)

    def add_user(self, name: str) -> str:
        """`dtm user add NAME`: the new user's token."""
        argv = [sys.executable, "-m", "dtm.run", "user", "add", name, "--config", str(self.config)]
        res = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"dtm user add {name}: {res.stderr.strip()}")
        return res.stdout.strip().splitlines()[0]

    # ------------------------------------------------------------ processes

    def start(self, component: str, env: dict[str, str] | None = None) -> Proc:
        """Start ``component`` (``env``: more environment, e.g. the sync's crash point)."""
        kind = self.kind(component)
        argv = [sys.executable, "-m", "dtm.run", kind, "--config", str(self.config)]
        if kind == "node":
            argv += ["--name", component]
        if component in SECOND:
            argv += ["--listen", self.hosts.addr[component]]
        argv = [*self.hosts.exec_prefix(component), *argv]
        proc = Proc(component, argv, self.root / "logs" / f"{component}.log", env)
        self.procs[component] = proc
        self._all.append(proc)
        return proc

    def healthy(self, component: str) -> bool:
        try:
            status, _ = http_json("GET", self.url(component) + "/healthz", timeout=1.0)
        except OSError:
            return False
        return status == 200

    def wait_healthy(self, components: list[str], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        pending = list(components)
        while pending:
            for c in list(pending):
                proc = self.procs[c]
                if not proc.alive():
                    raise RuntimeError(f"{c} exited with {proc.popen.returncode}: {self.tail(c)}")
                if self.healthy(c):
                    pending.remove(c)
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"not healthy within {timeout:.0f}s: {pending}")
            if pending:
                time.sleep(0.05)

    def start_all(self) -> None:
        for n in self.nodes:
            self.start(n)
        self.wait_healthy(self.nodes)
        for comp in SERVICES:
            self.start(comp)
        self.wait_healthy(list(SERVICES))

    def kill(self, component: str) -> None:
        proc = self.procs.get(component)
        if proc is not None:
            proc.stop(graceful=False)

    def restart(self, component: str, graceful: bool = False, wait: bool = True) -> None:
        proc = self.procs.get(component)
        if proc is not None:
            proc.stop(graceful=graceful)
        self.start(component)
        if wait:
            self.wait_healthy([component])

    def ensure_running(self) -> list[str]:
        """SIGCONT every paused process and start every dead one; the names restarted."""
        started = []
        for name, proc in list(self.procs.items()):
            if proc.paused:
                proc.signal(signal.SIGCONT)
            if not proc.alive():
                proc.stop()
                self.start(name)
                started.append(name)
        if started:
            self.wait_healthy(started)
        return started

    def wipe(self, node: str) -> None:
        """SIGKILL a data node and delete its database (it restarts with a new epoch)."""
        self.kill(node)
        for suffix in ("", "-wal", "-shm"):
            p = self.root / "data" / f"{node}.db{suffix}"
            if p.exists():
                p.unlink()

    def replicated(self, node: str, timeout: float) -> bool:
        """With no client write reaching ``node``: wait until every other node has applied its
        feed up to the last version in its database file now; False at the deadline."""
        db = self.root / "data" / f"{node}.db"
        try:
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
                epoch, last = conn.execute("SELECT epoch, last_version FROM meta").fetchone()
        except sqlite3.Error:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            behind = []
            for peer in self.nodes:
                if peer == node:
                    continue
                try:
                    status, body = http_json("GET", self.url(peer) + "/v1/status", self.auth)
                except OSError:
                    status, body = 0, None
                seen = (body or {}).get("applied", {}).get(node, {}) if status == 200 else {}
                if seen.get("epoch") != epoch or int(seen.get("version", 0)) < last:
                    behind.append(peer)
            if not behind:
                return True
            time.sleep(0.1)
        return False

    def set_offset(self, node: str, ms: int, wait: bool = True) -> None:
        """Restart ``node`` (SIGTERM) with its clock ``ms`` off (the node's clock_offset_ms)."""
        self.offsets[node] = ms
        self.write_config()
        self.restart(node, graceful=True, wait=wait)

    def tail(self, component: str, n: int = 20) -> str:
        p = self.root / "logs" / f"{component}.log"
        try:
            return "\n".join(p.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop_all(self) -> None:
        for proc in reversed(self._all):
            try:
                proc.stop(graceful=False)
            except Exception:
                proc.popen.kill()
        self._all.clear()
        self.procs.clear()
