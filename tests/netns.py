"""Test hosts in Linux network namespaces: one namespace per host, joined by a bridge.

    root namespace: bridge <br> 10.231.S.1/24
        ├── veth ── namespace h1: 10.231.S.11
        └── veth ── namespace h2: 10.231.S.12

The addresses exist only inside namespaces this test run creates; `partition(host)` takes a host's
link down (packets vanish: connects hang rather than fail fast, as across a real network) and
`heal(host)` brings it back. `teardown()` removes everything, even after a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager


def available() -> str | None:
    """None if namespaces can be used here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is missing"
    probe = f"dtmprobe{os.getpid()}"
    res = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if res.returncode != 0:
        return f"cannot create a network namespace: {res.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str, ns: str | None = None) -> None:
    argv = ["ip", *(["-n", ns] if ns else []), *args]
    res = subprocess.run(argv, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {res.stderr.strip()}")


class Hosts:
    """A set of namespace hosts on one bridge."""

    def __init__(self, names: list[str], subnet: int) -> None:
        tag = f"{os.getpid() % 10000}"
        self.subnet = subnet
        self.bridge = f"dtbr{tag}"
        self.ns = {n: f"dtm-{tag}-{n}" for n in names}
        self.addr = {n: f"10.231.{subnet}.{11 + i}" for i, n in enumerate(names)}
        self._veth = {n: f"dtv{tag}h{i}" for i, n in enumerate(names)}
        self._made: list[tuple[str, str]] = []

    def setup(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        self._made.append(("link", self.bridge))
        _ip("addr", "add", f"10.231.{self.subnet}.1/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for n, ns in self.ns.items():
            _ip("netns", "add", ns)
            self._made.append(("netns", ns))
            outer, inner = self._veth[n], self._veth[n] + "p"
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            self._made.append(("link", outer))
            _ip("link", "set", inner, "netns", ns)
            _ip("link", "set", outer, "master", self.bridge)
            _ip("link", "set", outer, "up")
            _ip("addr", "add", f"{self.addr[n]}/24", "dev", inner, ns=ns)
            _ip("link", "set", inner, "up", ns=ns)
            _ip("link", "set", "lo", "up", ns=ns)
            _ip("route", "add", "default", "via", f"10.231.{self.subnet}.1", ns=ns)

    def partition(self, host: str) -> None:
        _ip("link", "set", self._veth[host], "down")

    def heal(self, host: str) -> None:
        _ip("link", "set", self._veth[host], "up")

    def run_in(self, host: str, argv: list[str], timeout: float = 30) -> str:
        """Run a command inside a host's namespace; its stdout."""
        res = subprocess.run(
            ["ip", "netns", "exec", self.ns[host], *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if res.returncode != 0:
            raise RuntimeError(f"{argv} in {host}: {res.stderr.strip()}")
        return res.stdout

    def teardown(self) -> None:
        for kind, name in reversed(self._made):
            if kind == "netns":
                subprocess.run(["ip", "netns", "del", name], capture_output=True)
            else:
                subprocess.run(["ip", "link", "del", name], capture_output=True)
        self._made.clear()


@contextmanager
def hosts(names: list[str], subnet: int) -> Iterator[Hosts]:
    h = Hosts(names, subnet)
    try:
        h.setup()
        yield h
    finally:
        h.teardown()
