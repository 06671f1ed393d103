"""`python -m chaos.delay QUEUE MS JITTER`: hold every packet of netfilter queue QUEUE for MS ms
(± JITTER, never reordered), then let it go: the latency fault where the kernel has no sch_netem.

The namespace's packets reach the queue by an iptables-nft NFQUEUE rule (`chaos.net`); this
process speaks nfnetlink_queue over a raw netlink socket (metadata only, no payload copied) and
answers each packet's verdict (accept) once its time has come. Runs until killed; a rule with
``--queue-bypass`` lets packets through unheld if it is not running.
"""

from __future__ import annotations

import collections
import random
import select
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
MSG_PACKET, MSG_VERDICT, MSG_CONFIG = 0, 1, 2
CFG_CMD, CFG_PARAMS = 1, 2
CMD_BIND = 1
PACKET_HDR = 1
VERDICT_HDR = 2
COPY_META = 1
NF_ACCEPT = 1
NLM_F_REQUEST = 1


def _attr(kind: int, payload: bytes) -> bytes:
    n = 4 + len(payload)
    return struct.pack("HH", n, kind) + payload + b"\0" * (-n % 4)


def _msg(kind: int, queue: int, attrs: list[bytes]) -> bytes:
    body = struct.pack("BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + b"".join(attrs)
    return (
        struct.pack("IHHII", 16 + len(body), NFNL_SUBSYS_QUEUE << 8 | kind, NLM_F_REQUEST, 0, 0)
        + body
    )


def _packet_ids(data: bytes) -> list[int]:
    """The packet ids of the queue messages in one netlink read."""
    ids: list[int] = []
    off = 0
    while off + 16 <= len(data):
        length, kind = struct.unpack_from("IH", data, off)
        if length < 16:
            break
        if kind & 0xFF == MSG_PACKET:
            a = off + 20  # after the netlink header and the nfgenmsg
            while a + 4 <= off + length:
                alen, akind = struct.unpack_from("HH", data, a)
                if alen < 4:
                    break
                if akind & 0x7FFF == PACKET_HDR:
                    ids.append(struct.unpack_from(">I", data, a + 4)[0])
                a += (alen + 3) & ~3
        off += (length + 3) & ~3
    return ids


def run(queue: int, ms: int, jitter_ms: int, rng: random.Random) -> None:
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    s.bind((0, 0))
    bind = struct.pack("BxH", CMD_BIND, socket.htons(socket.AF_INET))
    s.send(_msg(MSG_CONFIG, queue, [_attr(CFG_CMD, bind)]))
    s.send(_msg(MSG_CONFIG, queue, [_attr(CFG_PARAMS, struct.pack(">IB", 0, COPY_META))]))
    held: collections.deque[tuple[float, int]] = collections.deque()  # (due, packet id), FIFO
    last_due = 0.0
    while True:
        timeout = max(0.0, held[0][0] - time.monotonic()) if held else None
        if select.select([s], [], [], timeout)[0]:
            now = time.monotonic()
            for pid in _packet_ids(s.recv(1 << 16)):
                due = now + (ms + rng.uniform(-jitter_ms, jitter_ms)) / 1000.0
                last_due = max(last_due, due)  # never reordered
                held.append((last_due, pid))
        now = time.monotonic()
        while held and held[0][0] <= now:
            _, pid = held.popleft()
            verdict = _attr(VERDICT_HDR, struct.pack(">II", NF_ACCEPT, pid))
            s.send(_msg(MSG_VERDICT, queue, [verdict]))


if __name__ == "__main__":
    q, delay, jitter = (int(a) for a in sys.argv[1:4])
    run(q, delay, jitter, random.Random(q))
