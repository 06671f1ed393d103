"""Hosts made of Linux network namespaces on one bridge, and the network faults between them.

    root namespace: bridge dc<tag>br 10.232.S.1/24 (the harness itself talks from here)
        ├── veth ── namespace dtmc<tag>-store1:   10.232.S.11
        ├── veth ── namespace dtmc<tag>-balancer: 10.232.S.12  ...

Every fault is an nftables table of its own inside the namespaces it concerns (packets are
dropped, never rejected, so connects hang as across a real network); healing deletes the table.
Latency is `tc netem` on the host's link when the kernel has it, else an iptables-nft NFQUEUE
rule on the host's outgoing packets and a delayer process (`chaos.delay`) answering each packet's
verdict late. `teardown()` removes every
namespace and the bridge this object made; `sweep_stale()` removes those of dead runs.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

PREFIX = "dtmc"
ROOT = Path(__file__).resolve().parent.parent  # where `python -m chaos.delay` runs


class NetError(RuntimeError):
    pass


def _run(argv: list[str], check: bool = True) -> str:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if check and res.returncode != 0:
        raise NetError(f"{' '.join(argv)}: {res.stderr.strip()}")
    return res.stdout


def unavailable() -> str | None:
    """None if namespace hosts and nftables can be used here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces and nftables need root"
    for tool, pkg in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            return f"the `{tool}` command ({pkg}) is missing"
    probe = f"{PREFIX}probe{os.getpid()}"
    res = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if res.returncode != 0:
        return f"cannot create a network namespace: {res.stderr.strip()}"
    try:
        res = subprocess.run(
            ["ip", "netns", "exec", probe, "nft", "add", "table", "inet", "probe"],
            capture_output=True,
            text=True,
        )
        if res.returncode != 0:
            return f"nftables does not work in a namespace: {res.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def netem_missing() -> str | None:
    """None if `tc netem` works here (the kernel's sch_netem), else why not."""
    if shutil.which("tc") is None:
        return "the `tc` command (iproute2) is missing"
    probe = f"{PREFIX}netem{os.getpid()}"
    subprocess.run(["ip", "netns", "add", probe], capture_output=True)
    try:
        res = subprocess.run(
            ["ip", "netns", "exec", probe, "tc", "qdisc", "add", "dev", "lo", "root", "netem"],
            capture_output=True,
            text=True,
        )
        if res.returncode != 0:
            return f"the kernel has no sch_netem ({res.stderr.strip()})"
        return None
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)


def _nfqueue_rule(queue: int) -> list[str]:
    """The iptables-nft rule that queues a host's outgoing packets (none if nobody listens)."""
    return ["OUTPUT", "!", "-o", "lo", "-j", "NFQUEUE", "--queue-num", str(queue), "--queue-bypass"]


def nfqueue_missing() -> str | None:
    """None if an NFQUEUE rule works in a namespace (the userspace delay), else why not."""
    if shutil.which("iptables-nft") is None:
        return "the `iptables-nft` command (iptables) is missing"
    probe = f"{PREFIX}nfq{os.getpid()}"
    subprocess.run(["ip", "netns", "add", probe], capture_output=True)
    try:
        res = subprocess.run(
            ["ip", "netns", "exec", probe, "iptables-nft", "-A", *_nfqueue_rule(1)],
            capture_output=True,
            text=True,
        )
        if res.returncode != 0:
            return f"no NFQUEUE in a namespace ({res.stderr.strip()})"
        return None
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)


def sweep_stale() -> list[str]:
    """Remove the namespaces and bridges of earlier runs whose process is gone; their names."""
    removed: list[str] = []
    for line in _run(["ip", "netns", "list"], check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.fullmatch(rf"{PREFIX}(\d+)-.+", name)
        if m and not _alive(int(m.group(1))):
            _run(["ip", "netns", "del", name], check=False)
            removed.append(name)
    for line in _run(["ip", "-o", "link", "show", "type", "bridge"], check=False).splitlines():
        m = re.search(r"\d+: (dc(\d+)br)[:@]", line)
        if m and not _alive(int(m.group(2))):
            _run(["ip", "link", "del", m.group(1)], check=False)
            removed.append(m.group(1))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_subnet() -> int:
    """A 10.232.S.0/24 that no address of the root namespace is in."""
    used = _run(["ip", "-o", "-4", "addr", "show"], check=False)
    nets = [ipaddress.ip_interface(a).network for a in re.findall(r"inet (\S+)", used)]
    for s in [*range(os.getpid() % 200 + 20, 250), *range(20, 250)]:
        net = ipaddress.ip_network(f"10.232.{s}.0/24")
        if not any(net.overlaps(n) for n in nets):
            return int(s)
    raise NetError("no free 10.232.S.0/24 subnet for the namespace hosts")


class Hosts:
    """Namespace hosts on one bridge, and the faults currently applied to them."""

    def __init__(self, names: list[str]) -> None:
        self.tag = str(os.getpid())
        self.names = list(names)
        self.bridge = f"dc{self.tag}br"
        self.ns = {n: f"{PREFIX}{self.tag}-{n}" for n in names}
        self._veth = {n: f"dc{self.tag}v{i}" for i, n in enumerate(names)}
        self.addr: dict[str, str] = {}
        self._made: list[tuple[str, str]] = []
        self._faults: dict[str, list[str]] = {}  # fault id -> hosts whose namespaces hold it
        self._netem: set[str] = set()
        self.nfqueue = False  # latency by NFQUEUE and `chaos.delay` (the kernel has no netem)
        self._delayers: dict[str, tuple[str, int, subprocess.Popen[bytes]]] = {}
        self._queues = 0

    def setup(self) -> None:
        subnet = _free_subnet()
        self.addr = {n: f"10.232.{subnet}.{11 + i}" for i, n in enumerate(self.names)}
        _run(["ip", "link", "add", self.bridge, "type", "bridge"])
        self._made.append(("link", self.bridge))
        _run(["ip", "addr", "add", f"10.232.{subnet}.1/24", "dev", self.bridge])
        _run(["ip", "link", "set", self.bridge, "up"])
        for n, ns in self.ns.items():
            _run(["ip", "netns", "add", ns])
            self._made.append(("netns", ns))
            outer, inner = self._veth[n], self._veth[n] + "p"
            _run(["ip", "link", "add", outer, "type", "veth", "peer", "name", inner])
            self._made.append(("link", outer))
            _run(["ip", "link", "set", inner, "netns", ns])
            _run(["ip", "link", "set", outer, "master", self.bridge])
            _run(["ip", "link", "set", outer, "up"])
            _run(["ip", "-n", ns, "addr", "add", f"{self.addr[n]}/24", "dev", inner])
            _run(["ip", "-n", ns, "link", "set", inner, "up"])
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
            _run(["ip", "-n", ns, "route", "add", "default", "via", f"10.232.{subnet}.1"])

    def exec_prefix(self, host: str) -> list[str]:
        """The argv prefix that runs a command on ``host``."""
        return ["ip", "netns", "exec", self.ns[host]]

    # ------------------------------------------------------------ faults

    def _nft(self, host: str, script: str) -> None:
        res = subprocess.run(
            [*self.exec_prefix(host), "nft", "-f", "-"],
            input=script,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if res.returncode != 0:
            raise NetError(f"nft on {host}: {res.stderr.strip()}\n{script}")

    def _table(self, fid: str, host: str, inbound: str, outbound: str) -> None:
        table = f"inet f{fid}"
        script = (
            f"add table {table}\n"
            f"add chain {table} in {{ type filter hook input priority 0; policy accept; }}\n"
            f"add chain {table} out {{ type filter hook output priority 0; policy accept; }}\n"
        )
        if inbound:
            script += f"add rule {table} in {inbound} drop\n"
        if outbound:
            script += f"add rule {table} out {outbound} drop\n"
        self._nft(host, script)
        self._faults.setdefault(fid, []).append(host)

    def isolate(self, fid: str, host: str) -> None:
        """Cut ``host`` off from every other host (its loopback still works)."""
        self._table(fid, host, 'iifname != "lo"', 'oifname != "lo"')

    def split(self, fid: str, a: str, b: str) -> None:
        """Cut ``a`` and ``b`` from each other; both still reach everyone else."""
        self._table(fid, a, f"ip saddr {self.addr[b]}", f"ip daddr {self.addr[b]}")
        self._table(fid, b, f"ip saddr {self.addr[a]}", f"ip daddr {self.addr[a]}")

    def one_way(self, fid: str, src: str, dst: str) -> None:
        """Drop what ``src`` sends to ``dst``; what ``dst`` sends to ``src`` still arrives."""
        self._table(fid, src, "", f"ip daddr {self.addr[dst]}")

    def loss(self, fid: str, host: str, percent: int) -> None:
        """Drop ``percent`` % of ``host``'s packets, each way, at random."""
        rule = f"numgen random mod 100 < {int(percent)}"
        self._table(fid, host, f'iifname != "lo" {rule}', f'oifname != "lo" {rule}')

    def delay(self, fid: str, host: str, ms: int, jitter_ms: int) -> None:
        """Delay ``host``'s outgoing packets by ``ms`` ± ``jitter_ms`` (sch_netem, or NFQUEUE)."""
        if self.nfqueue:
            self._queues += 1
            queue = 100 + self._queues  # one netfilter queue per fault
            argv = [sys.executable, "-m", "chaos.delay", str(queue), str(ms), str(jitter_ms)]
            proc = subprocess.Popen(
                [*self.exec_prefix(host), *argv], cwd=ROOT, stdin=subprocess.DEVNULL
            )
            time.sleep(0.2)  # bound to its queue (until then the rule lets packets by)
            _run([*self.exec_prefix(host), "iptables-nft", "-A", *_nfqueue_rule(queue)])
            self._delayers[fid] = (host, queue, proc)
            self._faults.setdefault(fid, []).append(f"nfq:{host}")
            return
        dev = self._veth[host] + "p"
        argv = ["tc", "qdisc", "replace", "dev", dev, "root", "netem"]
        argv += ["delay", f"{ms}ms", f"{jitter_ms}ms"]
        _run([*self.exec_prefix(host), *argv])
        self._netem.add(host)
        self._faults.setdefault(fid, []).append(f"netem:{host}")

    def heal(self, fid: str) -> None:
        for host in self._faults.pop(fid, []):
            if host.startswith("nfq:"):
                h, queue, proc = self._delayers.pop(fid)
                _run([*self.exec_prefix(h), "iptables-nft", "-D", *_nfqueue_rule(queue)], False)
                proc.kill()
                proc.wait(5)
            elif host.startswith("netem:"):
                h = host.split(":", 1)[1]
                dev = self._veth[h] + "p"
                _run([*self.exec_prefix(h), "tc", "qdisc", "del", "dev", dev, "root"], False)
                self._netem.discard(h)
            else:
                _run([*self.exec_prefix(host), "nft", "delete", "table", "inet", f"f{fid}"], False)

    def heal_all(self) -> None:
        for fid in list(self._faults):
            self.heal(fid)

    @property
    def faults(self) -> list[str]:
        return sorted(self._faults)

    def teardown(self) -> None:
        self._faults.clear()
        for kind, name in reversed(self._made):
            if kind == "netns":
                _run(["ip", "netns", "del", name], check=False)
            else:
                _run(["ip", "link", "del", name], check=False)
        self._made.clear()
