"""The latency fault of the fault harness without sch_netem: an NFQUEUE rule and `chaos.delay`
hold a namespace host's outgoing packets. Every answer through it takes at least the delay, and
the host answers as before once healed. Needs root, iproute2, nftables and iptables-nft."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from chaos.net import Hosts, nfqueue_missing, unavailable
from tests.harness import wait_until

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]
_why = unavailable() or nfqueue_missing()
if _why is not None:
    pytestmark.append(pytest.mark.skip(reason=f"no NFQUEUE delay here: {_why}"))

PORT = 7999
ECHO = (
    "import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
    f"s.bind(('0.0.0.0',{PORT}));s.listen()\n"
    "while True:\n c,_=s.accept()\n while (d:=c.recv(64)):\n  c.sendall(d)\n c.close()"
)


@pytest.fixture
def echo_host() -> Iterator[tuple[Hosts, str]]:
    hosts = Hosts(["b"])
    hosts.nfqueue = True
    proc: subprocess.Popen[bytes] | None = None
    try:
        hosts.setup()
        proc = subprocess.Popen([*hosts.exec_prefix("b"), sys.executable, "-c", ECHO])
        yield hosts, hosts.addr["b"]
    finally:
        if proc is not None:
            proc.kill()
            proc.wait(5)
        hosts.heal_all()
        hosts.teardown()


def _round_trips(addr: str, n: int = 5) -> list[float]:
    with socket.create_connection((addr, PORT), timeout=10) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        out = []
        for _ in range(n):
            t = time.monotonic()
            c.sendall(b"x")
            assert c.recv(64) == b"x"
            out.append(time.monotonic() - t)
        return out


def test_a_delayed_host_answers_no_sooner_than_the_delay(echo_host: tuple[Hosts, str]) -> None:
    hosts, addr = echo_host

    def up() -> bool:
        try:
            return len(_round_trips(addr, 1)) == 1
        except OSError:
            return False

    wait_until(up, 20, 0.05, "the echo server in the namespace")
    hosts.delay("1", "b", 200, 0)
    delayed = _round_trips(addr)
    assert min(delayed) >= 0.2, delayed  # each answer waited in the queue at least that long
    hosts.heal("1")
    assert len(_round_trips(addr)) == 5
    print(f"round trips with 200 ms on b's packets: {[round(x * 1000) for x in delayed]} ms")
