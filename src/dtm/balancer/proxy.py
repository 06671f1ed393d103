"""The balancer's request path: pick a data node, forward the bytes, fail over, answer.

One `Balancer` owns the nodes and the totals; `forward` serves one client request. It tries
nodes in `spread.attempt_order`, repeats on the next node only as `policy` allows, ejects a node
on a connection failure or a timeout, and streams the first usable answer to the client.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
import time
from typing import Protocol

from prometheus_client import CollectorRegistry

from dtm.auth import Credential
from dtm.balancer import gate, status
from dtm.balancer.http1 import RequestHead, UpstreamProtocolError
from dtm.balancer.policy import (
    READ_METHODS,
    SESSION_METHODS,
    WRITE_METHODS,
    is_clock_skew,
    is_not_caught_up,
    may_retry,
)
from dtm.balancer.spread import attempt_order, pinned_order
from dtm.balancer.timeouts import read_timeout_ms
from dtm.balancer.upstream import Node, UpstreamClosed, UpstreamConn, UpstreamTimeout
from dtm.config import BalancerConfig, NodeConfig
from dtm.core.deadline import attempt_deadline, retry_after_ms, retry_allowed, retry_floor
from dtm.core.hlc import DEFAULT_MAX_OFFSET_MS
from dtm.errors import (
    DtmError,
    ErrMaybeApplied,
    ErrSyntaxInvalidArgs,
    ErrTimeout,
    ErrUnavailable,
)
from dtm.hosts import is_loopback
from dtm.wire import encode, is_node_name

log = logging.getLogger("dtm.balancer")


def wall_ms() -> int:
    """This machine's clock in unix milliseconds (deadlines, and the clock /healthz shows)."""
    return time.time_ns() // 1_000_000


class Client(Protocol):
    """The client connection a request came on (see `downstream.ClientConn`)."""

    transport: asyncio.Transport | None
    upstream: UpstreamConn | None

    @property
    def left(self) -> bool:
        """The client closed its side: nobody reads an answer on this connection any more."""
        ...


class Balancer:
    """The balancer as a `downstream.Site`: it serves a request by forwarding it."""

    name = "balancer"

    def __init__(
        self,
        cfg: BalancerConfig,
        nodes: tuple[NodeConfig, ...],
        credential: Credential | None = None,
        client_ssl: ssl.SSLContext | None = None,
    ) -> None:
        self.client_ssl = client_ssl  # TLS to the nodes (None: plain HTTP)
        self.cfg = cfg
        self.credential = credential
        self.loopback = is_loopback(cfg.host)
        self.read_timeout_ms = cfg.read_timeout_ms
        self.max_body_bytes = cfg.max_body_bytes
        self.max_connections = cfg.max_connections
        self.head_timeout_ms = cfg.head_timeout_ms
        self.max_buffered_bytes = cfg.max_buffered_bytes
        self.idle_ticks = math.ceil(cfg.client_idle_timeout_ms / max(cfg.head_timeout_ms / 4, 10))
        self.connections = 0  # client connections open
        self.buffered = 0  # request body bytes held across all client connections
        timeout_s = cfg.connect_timeout_ms / 1000
        self.nodes = [Node(n.name, n.host, n.port, timeout_s, client_ssl) for n in nodes]
        # How far apart the clocks may be: a retried write waits this long past its deadline.
        self.max_offset_ms = max(
            (n.max_clock_offset_ms for n in nodes), default=DEFAULT_MAX_OFFSET_MS
        )
        self.totals = status.Counters()
        self.registry: CollectorRegistry = status.make_registry(self.nodes, self.totals)
        self._turn = 0
        self._loop = asyncio.get_running_loop()

    # ------------------------------------------------------------ health

    def eject(self, node: Node, why: str) -> None:
        if node.eject():
            if node.answered:
                log.warning("ejected %s (%s): %s", node.name, node.url, why)
            else:  # still starting, as on every clean start: not a fault
                log.info("%s (%s) does not answer yet: %s", node.name, node.url, why)

    def readmit(self, node: Node) -> None:
        first = not node.answered
        node.answered = True
        back = node.readmit()
        if first:  # every node's first answer, ejected before (still starting) or not
            log.info("%s (%s) answers: in rotation", node.name, node.url)
        elif back:
            log.warning("readmitted %s (%s)", node.name, node.url)

    # ------------------------------------------------------------ own endpoints

    def admit(self, head: RequestHead) -> bytes | None:
        """None if ``head`` may be served; else the answer that refuses it."""
        no = gate.refusal(head, self.credential, self.loopback)
        if no is None:
            return None
        return status.error_response(no.err, False, no.status, no.extra)

    def local(self, head: RequestHead) -> bytes | None:
        """The balancer's own answer for ``head``, or None to forward it."""
        if head.path not in gate.LOCAL_PATHS or head.method not in READ_METHODS:
            return None
        keep, head_only = head.keep_alive, head.method == "HEAD"
        if head.path == "/healthz":
            body = status.health_body("balancer", wall_ms())
            return status.response(200, body, keep, head_only=head_only)
        if head.path == "/v1/status":
            body = encode(status.status_of(self.nodes, self.totals))
            return status.response(200, body, keep, head_only=head_only)
        body = status.metrics_body(self.registry)
        return status.response(200, body, keep, status.PROMETHEUS_TYPE, head_only)

    # ------------------------------------------------------------ forwarding

    def _order(self, write: bool, pin: str | None = None) -> list[Node] | None:
        """The nodes to try, in order; None when ``pin`` names no node."""
        nodes = self.nodes
        if pin is not None:
            picked = pinned_order([n.name for n in nodes], pin)
            return None if picked is None else [nodes[i] for i in picked]
        turn = self._turn
        self._turn = turn + 1
        if len(nodes) == 1:
            return nodes
        fenced = [n.fenced for n in nodes] if write else None
        return [nodes[i] for i in attempt_order([n.healthy for n in nodes], turn, fenced)]

    async def forward(self, client: Client, head: RequestHead, body: bytes | bytearray) -> bool:
        """Serve one request; True if the client connection stays open."""
        totals = self.totals
        totals.requests += 1
        totals.in_flight += 1
        try:
            return await self._forward(client, head, body)
        finally:
            totals.in_flight -= 1

    async def _forward(self, client: Client, head: RequestHead, body: bytes | bytearray) -> bool:
        method = head.method
        payload = head.upstream_bytes(body)
        timeout_ms = read_timeout_ms(head.wait_ms, self.read_timeout_ms)
        timeout_s = timeout_ms / 1000
        keep = head.keep_alive
        problems: list[str] = []
        timeouts = 0
        deferred: tuple[bytes, bytes] | None = None
        attempts = 0
        write = method in WRITE_METHODS
        pin = head.node
        order = self._order(write, pin)
        if order is None:  # (a pin that is not a node name at all is the client's error)
            shown = str(pin)[:80]
            no: DtmError = ErrUnavailable(
                f"no data node named {shown!r} in this cluster "
                f"(nodes: {', '.join(n.name for n in self.nodes)})"
            )
            if not is_node_name(str(pin)):
                no = ErrSyntaxInvalidArgs(f"X-Dtm-Node must be a node name, not {shown!r}")
            self._write(client, status.error_response(no, keep))
            return keep
        reached = 0  # the latest deadline of a write attempt that may have reached a node
        for node in order:
            if reached and not self._may_retry(client, head, reached):
                problems.append("not tried again: the caller no longer waits")
                break
            if attempts:
                node.retries += 1
            attempts += 1
            node.requests += 1
            node.in_flight += 1
            conn: UpstreamConn | None = None
            streaming = False
            deadline = 0
            try:
                try:
                    conn, _ = await node.acquire(self._loop)
                except (OSError, TimeoutError) as exc:
                    node.failures += 1
                    why = _describe(exc, node.connect_timeout_s)
                    timeouts += isinstance(exc, TimeoutError)
                    problems.append(f"{node.name}: cannot connect: {why}")
                    self.eject(node, why)
                    continue  # it never reached a node: always safe to try the next
                if method not in READ_METHODS:
                    # A write must not be stamped after we, or our caller, stop waiting for it;
                    # its retry waits out the first copy's deadline and orders after it, and is
                    # sent only while the caller still waits (core/deadline).
                    floor = 0
                    if reached:
                        await _sleep_until(retry_after_ms(reached, self.max_offset_ms))
                        if not self._may_retry(client, head, reached):
                            node.release(conn)
                            conn = None
                            problems.append("not tried again: the caller no longer waits")
                            break
                        floor = retry_floor(0, reached)
                    deadline = attempt_deadline(wall_ms(), timeout_ms, head.deadline_ms)
                    payload = head.upstream_bytes(body, deadline, floor)
                try:
                    rhead = await conn.send(payload, method, timeout_s)
                    if (rhead.status == 409 and method in SESSION_METHODS) or (
                        rhead.status == 503 and write
                    ):
                        rbody = await conn.read_body()
                        node.release(conn)
                        conn = None
                        answer = rhead.client_bytes(node.upstream_header, keep, len(rbody))
                        if is_not_caught_up(method, rhead.status, rbody):
                            deferred = (answer, rbody)
                            problems.append(f"{node.name}: not caught up")
                            continue
                        if is_clock_skew(method, rhead.status, rbody):
                            # The node refused the write before applying it: try another.
                            deferred = (answer, rbody)
                            problems.append(f"{node.name}: clock fenced")
                            continue
                        self._write(client, answer + rbody)
                        return keep
                    keep = keep and rhead.content_length >= 0
                    client.upstream = conn
                    streaming = True
                    sink = client.transport
                    if sink is None or sink.is_closing():
                        return False
                    await conn.stream_to(sink, rhead.client_bytes(node.upstream_header, keep))
                    node.release(conn)
                    conn = None
                    return keep
                except (UpstreamTimeout, UpstreamClosed, UpstreamProtocolError, OSError) as exc:
                    node.failures += 1
                    why = str(exc) or type(exc).__name__
                    self.eject(node, why)
                    if streaming:  # the client has part of this answer: end its connection
                        log.warning("answer from %s broke off mid-stream: %s", node.name, why)
                        return False
                    timeouts += isinstance(exc, UpstreamTimeout)
                    problems.append(f"{node.name}: {why}")
                    if method not in READ_METHODS:
                        reached = max(reached, deadline)
                    if not may_retry(method, head.path, reached_node=True):
                        break
            finally:
                node.in_flight -= 1
                client.upstream = None
                if conn is not None:
                    conn.close()
        if deferred is not None:
            self._write(client, deferred[0] + deferred[1])
            return keep
        self.totals.unanswered += 1
        detail = "; ".join(problems) or "no data node configured"
        err: DtmError
        if reached:  # a write that got to a node unanswered: it may stand there
            err = ErrMaybeApplied(f"the write may have been applied: {detail}")
        elif attempts and timeouts == attempts:
            err = ErrTimeout(f"no data node answered in time: {detail}")
        else:
            err = ErrUnavailable(f"no data node answered: {detail}")
        self._write(client, status.error_response(err, keep))
        return keep

    def _may_retry(self, client: Client, head: RequestHead, reached: int) -> bool:
        return retry_allowed(reached, self.max_offset_ms, head.deadline_ms, client.left)

    @staticmethod
    def _write(client: Client, data: bytes) -> None:
        if client.transport is not None and not client.transport.is_closing():
            client.transport.write(data)

    def close(self) -> None:
        for node in self.nodes:
            for conn in node.idle:
                conn.close()
            node.idle.clear()


async def _sleep_until(at_ms: int) -> None:
    """Wait until this machine's clock is past ``at_ms`` (unix ms)."""
    while (left := at_ms - wall_ms()) >= 0:
        await asyncio.sleep((left + 1) / 1000)


def _describe(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"connect timed out after {timeout_s * 1000:.0f} ms"
    return str(exc) or type(exc).__name__
