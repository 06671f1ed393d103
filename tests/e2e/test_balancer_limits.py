"""The balancer's bounded resources: head and body timeouts (slowloris), the global cap on
buffered request bodies (RSS under 200 unfinished bodies), and the connection cap."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from pathlib import Path

from fakenode import FakeNode
from tests.harness import LocalCluster, request, wait_until

FAST = {"health_interval_ms": 100, "health_timeout_ms": 300, "connect_timeout_ms": 300}
MIB = 1024 * 1024


def _rig(tmp_path: Path, **balancer: object) -> tuple[LocalCluster, FakeNode]:
    c = LocalCluster(tmp_path, nodes=1, sections={"balancer": {**FAST, **balancer}})
    node = FakeNode(c.ports["store1"]).start()
    c.start("balancer")
    return c, node


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _read_all(s: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := s.recv(65536):
            chunks.append(chunk)
    except (ConnectionResetError, TimeoutError):
        pass
    return b"".join(chunks)


def test_slowloris_heads_get_408_while_a_normal_client_is_served(tmp_path: Path) -> None:
    head_timeout = 800
    c, node = _rig(tmp_path, head_timeout_ms=head_timeout)
    try:
        port = c.ports["balancer"]
        head = b"GET /v1/kv/slow HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + b"a" * 200
        socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(100)]
        t0 = time.monotonic()
        for s in socks:
            s.setblocking(False)
        closed: dict[int, float] = {}
        replies: dict[int, bytes] = {i: b"" for i in range(len(socks))}
        served = 0
        i = 0
        while len(closed) < len(socks) and time.monotonic() - t0 < 10:
            for k, s in enumerate(socks):  # one more byte on every open socket
                if k in closed:
                    continue
                with contextlib.suppress(OSError):
                    s.send(head[i % len(head) : i % len(head) + 1])
                try:
                    data = s.recv(65536)
                    replies[k] += data
                    if not data:
                        closed[k] = time.monotonic() - t0
                except BlockingIOError:
                    pass
                except OSError:
                    closed[k] = time.monotonic() - t0
            i += 1
            if request("GET", c.url("balancer") + "/v1/kv/ok", timeout=5).status == 200:
                served += 1
            time.sleep(0.05)
        for s in socks:
            s.close()
        assert len(closed) == len(socks), f"{len(socks) - len(closed)} slow heads still open"
        assert all(r.startswith(b"HTTP/1.1 408 ") for r in replies.values())
        body = next(iter(replies.values())).partition(b"\r\n\r\n")[2]
        assert json.loads(body)["error"] == "ErrRequestTimeout"
        assert served >= 10  # the normal client was served all along
        # closed within the head timeout plus one tick (a quarter) and a margin for this machine
        worst = max(closed.values())
        print(f"slowloris: 100 heads closed after {min(closed.values()):.2f}..{worst:.2f} s")
        assert worst < head_timeout / 1000 * 1.25 + 2.0
        metrics = request("GET", c.url("balancer") + "/metrics").body.decode()
        assert "dtm_balancer_request_timeouts_total 100.0" in metrics
        assert all(s.target != b"/v1/kv/slow" for s in node.requests())
    finally:
        c.stop_all()
        node.stop()


def test_a_stalled_body_gets_408(tmp_path: Path) -> None:
    c, node = _rig(tmp_path, head_timeout_ms=400)
    try:
        with socket.create_connection(("127.0.0.1", c.ports["balancer"]), timeout=5) as s:
            s.sendall(
                b"PUT /v1/kv/b HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                b"Authorization: " + c.auth_header.encode() + b"\r\nContent-Length: 100\r\n\r\n{"
            )
            reply = _read_all(s)
        assert reply.startswith(b"HTTP/1.1 408 "), reply[:200]
        assert node.requests() == []
    finally:
        c.stop_all()
        node.stop()


def test_200_unfinished_bodies_stay_within_the_global_buffer_cap(tmp_path: Path) -> None:
    cap = 16 * MIB
    c, node = _rig(tmp_path, max_buffered_bytes=cap, max_body_bytes=16 * MIB, max_connections=400)
    try:
        pid = c.procs["balancer"].pid
        before = _rss_kib(pid)
        head = (
            b"PUT /v1/kv/big HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Authorization: " + c.auth_header.encode() + b"\r\nContent-Length: %d\r\n\r\n"
        ) % (8 * MIB)
        part = b"x" * MIB
        socks = []
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", c.ports["balancer"]), timeout=10)
            s.sendall(head)
            # A MiB of the 8 promised, then nothing more (or refused 503 while still sending).
            with contextlib.suppress(OSError):
                s.sendall(part)
            socks.append(s)

        def refusals() -> int:
            text = request("GET", c.url("balancer") + "/metrics").body.decode()
            line = next(
                x for x in text.splitlines() if x.startswith("dtm_balancer_refused_buffers")
            )
            return int(float(line.split()[1]))

        # Everything was read: the bodies under the cap are held, the rest were refused.
        wait_until(lambda: refusals() >= 200 - cap // MIB, 20, 0.05, "over-cap bodies refused")
        after = _rss_kib(pid)
        grown_mib = (after - before) / 1024
        print(f"RSS before {before / 1024:.1f} MiB, after 200 bodies {after / 1024:.1f} MiB")
        assert grown_mib < cap / MIB * 2 + 32  # without the cap: 200 MiB or more
        for s in socks:
            s.close()
        assert request("GET", c.url("balancer") + "/v1/kv/after").status == 200
        assert node.requests()[-1].target == b"/v1/kv/after"
        assert all(s.target != b"/v1/kv/big" for s in node.requests())
    finally:
        c.stop_all()
        node.stop()


def test_connections_over_the_cap_get_503(tmp_path: Path) -> None:
    c, node = _rig(tmp_path, max_connections=20)
    try:
        port = c.ports["balancer"]
        held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(20)]
        extra = socket.create_connection(("127.0.0.1", port), timeout=5)
        reply = _read_all(extra)
        extra.close()
        assert reply.startswith(b"HTTP/1.1 503 "), reply[:200]
        assert json.loads(reply.partition(b"\r\n\r\n")[2])["error"] == "ErrUnavailable"
        for s in held:
            s.close()
        wait_until(
            lambda: request("GET", c.url("balancer") + "/v1/kv/x").status == 200, 5, 0.05, "room"
        )
    finally:
        c.stop_all()
        node.stop()
