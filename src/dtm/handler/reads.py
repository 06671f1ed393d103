"""The handler's session reads and deletes: the shell of `dtm.core.readplan` over the balancer.

Rule: every read and delete follows the pure plan — this module only sends what the plan asks
(concurrently), turns each answer into a plan answer, merges what the plan says to merge
(`dtm.core.readmerge`), and folds every served answer's contribution into the session. A read
one node serves goes on as the node's bytes; only a merge decodes and encodes rows here. A read
the client pinned to one node (``todo --node``) asks that node only and takes its rows as they
are: the pin is a request to see one replica, stale or not. A scan whose held copy the node watch
vouches for (`dtm.core.pagefresh`) is served from it without a request.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from dataclasses import replace

import aiohttp

from dtm import wire
from dtm.core import deleteplan, pagefresh
from dtm.core import readplan as plan
from dtm.core.readmerge import latest, live, merge_pages
from dtm.errors import (
    DtmError,
    ErrClockSkew,
    ErrNoDataFound,
    ErrNotCaughtUp,
    ErrTimeout,
    ErrUnavailable,
)
from dtm.handler.metrics import HandlerMetrics
from dtm.handler.pagecache import Copy, PageCache
from dtm.handler.session import Session, contribution_of
from dtm.handler.upstream import Reply, Upstream
from dtm.handler.watch import NodeWatch

EMPTY = wire.SessionToken()
SYNC_PROBE_S = 0.5
DELETE_ROUNDS = 3


def _target(path: str, query: dict[str, str] | None) -> str:
    """``path`` with ``query`` (our own URL-safe values: limits and keys)."""
    if not query:
        return path
    return path + "?" + "&".join(f"{k}={v}" for k, v in query.items())


def _session_line(token: wire.SessionToken) -> str:
    return f"{wire.SESSION_HEADER}: {wire.encode(token).decode()}\r\n" if token.versions else ""


class SessionReads:
    """Session reads through the balancer, merging several nodes when no single one covers."""

    def __init__(
        self,
        upstream: Upstream,
        nodes: Sequence[str],
        metrics: HandlerMetrics,
        sync_url: str | None = None,
        client_ssl: ssl.SSLContext | None = None,
        pages: PageCache | None = None,
        watch: NodeWatch | None = None,
    ) -> None:
        self.upstream = upstream
        self.pages = pages if pages is not None else PageCache(0)
        self.watch = watch
        self.nodes = tuple(nodes)
        self.metrics = metrics
        self.sync_url = sync_url
        self.client_ssl = client_ssl

    def _decode(self, reply: Reply, typ: type[wire.T]) -> wire.T:
        try:
            return wire.decode(reply.body, typ, what="the load balancer's answer")
        except DtmError as exc:
            raise ErrUnavailable(
                f"the load balancer sent a malformed answer: {exc.message}"
            ) from None

    # ------------------------------------------------------------ one request

    async def _one(
        self, read: plan.Read, path: str, query: dict[str, str] | None
    ) -> plan.Served[Reply] | plan.Behind | plan.Unreachable:
        up = self.upstream
        wait = up.catch_up_wait_ms if read.wait else 0
        extra = f"{wire.WAIT_HEADER}: {wait}\r\n" + _session_line(read.token)
        q = dict(query or {})
        if read.node is not None:
            q["tombstones"] = "1"  # a merge orders deletes too
        try:
            reply = await self._get(path, _target(path, q), extra, wait, read)
        except (ErrUnavailable, ErrTimeout) as exc:
            if read.node is None:
                raise
            return plan.Unreachable(read, exc.message, ErrUnavailable(exc.message))
        answer = contribution_of(reply.session) or EMPTY
        node = next(iter(answer.versions), reply.node or read.node or "?")
        if reply.status == 200:
            return plan.Served(read, node, answer, reply)
        err = up._error(reply)
        if isinstance(err, ErrNoDataFound):
            return plan.Served(read, node, answer, reply)
        if isinstance(err, ErrNotCaughtUp):
            return plan.Behind(read, node, answer)
        if isinstance(err, ErrUnavailable) and read.node is not None:
            return plan.Unreachable(read, err.message, err)
        raise err

    async def _get(self, path: str, target: str, extra: str, wait: int, read: plan.Read) -> Reply:
        """One GET through the balancer; a scan is served from a held copy the watch vouches
        for, else offers the pages held for its target, and a 304 answer comes back as the held
        copy (`dtm.handler.pagecache`)."""
        up = self.upstream
        node = read.node
        offer = None
        if path == "/v1/kv":
            unasked = self._unasked(target, read)
            if unasked is not None:
                return unasked
            offer = self.pages.offer(target)
        if offer is None:
            reply = await up._send("GET", target, extra, extra_ms=wait, node=node)
        else:
            ask = f"{extra}If-None-Match: {offer}\r\n"
            reply = await up._send("GET", target, ask, extra_ms=wait, node=node)
            if reply.status == 304:
                copy = self.pages.get(target, reply.etag)
                if copy is not None:
                    self.metrics.page_reused()
                    return Reply(200, copy.body, copy.session, reply.node, copy.tag)
                reply = await up._send("GET", target, extra, extra_ms=wait, node=node)
        if reply.status == 200 and reply.etag and reply.node and path == "/v1/kv":
            claim = contribution_of(reply.session) or EMPTY
            epoch, version = claim.epochs.get(reply.node), claim.versions.get(reply.node)
            at = None if epoch is None or version is None else (epoch, version)
            self.pages.put(Copy(target, reply.node, reply.etag, reply.body, reply.session, at))
        return reply

    def _unasked(self, target: str, read: plan.Read) -> Reply | None:
        """A held copy of ``target`` that the watch vouches for, as its node's answer to
        ``read`` (None: ask a node)."""
        watch = self.watch
        if watch is None:
            return None
        watch.want()
        now = watch.now_ms()
        for copy in self.pages.held(target):
            if copy.epoch is None or (read.node is not None and copy.node != read.node):
                continue
            mark = watch.mark(copy.node)
            if pagefresh.servable(mark, now, copy.epoch, copy.version, read.token):
                self.pages.used(copy)
                self.metrics.page_unasked()
                return Reply(200, copy.body, copy.session, copy.node, copy.tag)
        return None

    def wrote(self, reply: Reply) -> None:
        """A write this handler sent was answered by ``reply.node``: its mark is behind."""
        if self.watch is not None:
            self.watch.forget(reply.node)

    async def _pinned(
        self, node: str, path: str, query: dict[str, str] | None, s: Session
    ) -> Reply:
        """A read the client pinned to ``node`` (``todo --node``): that node's rows as they are,
        without the session's guarantee (showing one replica's own view, stale or not, is the
        point: it is how a learner makes the specification's conflict); its answer still joins
        the session. 200 or 404 returned, anything else raised."""
        reply = await self.upstream._send(
            "GET", _target(path, query), f"{wire.WAIT_HEADER}: 0\r\n", node=node
        )
        if reply.status == 200 or isinstance(self.upstream._error(reply), ErrNoDataFound):
            s.absorb(reply.session)
            return reply
        raise self.upstream._error(reply)

    # ------------------------------------------------------------ the plan's loop

    async def _run(
        self, path: str, query: dict[str, str] | None, s: Session
    ) -> tuple[plan.Served[Reply], ...]:
        """The answers that together serve this read (one, or several to merge)."""
        state: plan.ReadState[Reply]
        step: plan.Step[Reply]
        state, step = plan.start(s.token, self.nodes, self.upstream.catch_up_wait_ms > 0)
        while True:
            if isinstance(step, plan.Done):
                for served in step.served:
                    s.merge(served.contribution)
                return step.served
            if isinstance(step, plan.Fail):
                self.metrics.not_caught_up()
                raise await self._explained(state, step)
            s.token = step.token
            if len(step.reads) == 1:  # the usual read: no task and no gathering for it
                answers = [await self._one(step.reads[0], path, query)]
            else:
                answers = await asyncio.gather(*(self._one(r, path, query) for r in step.reads))
            reads: list[plan.Read] = []
            final: plan.Step[Reply] | None = None
            for answer in answers:
                waited = state.waited
                state, nxt = plan.next_read(state, answer)
                if state.waited and not waited:
                    self.metrics.catch_up_retry()
                if isinstance(nxt, plan.Send):
                    reads += nxt.reads
                    s.token = nxt.token
                elif nxt is not None:
                    final = nxt
            step = final if final is not None else plan.Send(tuple(reads), s.token)

    async def _explained(self, state: plan.ReadState[Reply], fail: plan.Fail) -> DtmError:
        if not fail.missing:
            return fail.error
        running = await self._sync_running()
        return ErrNotCaughtUp(plan.explain(replace(state, sync=running), fail.missing))

    async def _sync_running(self) -> str:
        """ "running" if the sync process answers its /healthz now, "stopped" if not."""
        if self.sync_url is None:
            return "unknown"
        timeout = aiohttp.ClientTimeout(total=SYNC_PROBE_S)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.get(f"{self.sync_url}/healthz", ssl=self.client_ssl or True) as resp,
            ):
                return "running" if resp.status == 200 else "stopped"
        except (aiohttp.ClientError, OSError, TimeoutError):
            return "stopped"

    # ------------------------------------------------------------ reads

    def _row(self, served: plan.Served[Reply]) -> wire.Row | None:
        reply = served.payload
        return None if reply.status == 404 else self._decode(reply, wire.Row)

    async def get_raw(
        self, key: str, s: Session, node: str | None = None
    ) -> tuple[bytes | None, str | None]:
        """The live row for ``key`` as JSON `Row` bytes (None if absent or deleted), and the
        node that served it."""
        path = f"/v1/kv/{key}"
        if node is not None:
            reply = await self._pinned(node, path, None, s)
            return (None if reply.status == 404 else reply.body), node
        served = await self._run(path, None, s)
        if served[0].read.node is None:
            one = served[0].payload
            return (None if one.status == 404 else one.body), served[0].node
        rows = {a.node: self._row(a) for a in served}
        best = live(latest(rows.values()))
        if best is None:
            return None, None
        where = next((n for n, r in rows.items() if r is not None and r == best), None)
        return wire.encode(best), where

    async def scan_raw(
        self, after: str | None, limit: int, s: Session, node: str | None = None
    ) -> bytes:
        """Live rows with key > ``after``, in key order: `RowPage` JSON bytes."""
        query = {"limit": str(limit)}
        if after:
            query["after"] = after
        if node is not None:
            reply = await self._pinned(node, "/v1/kv", query, s)
            if reply.status == 404:
                raise self.upstream._error(reply)
            return reply.body
        served = await self._run("/v1/kv", query, s)
        for one in served:
            if one.payload.status == 404:
                raise self.upstream._error(one.payload)
        if served[0].read.node is None:
            return served[0].payload.body
        pages = [self._decode(one.payload, wire.RowPage) for one in served]
        rows, nxt = merge_pages([(p.rows, p.next) for p in pages])
        return wire.encode(wire.RowPage(rows, nxt))

    # ------------------------------------------------------------ deletes

    async def delete(
        self, key: str, hlc: int, node: str | None, s: Session, pinned: bool = False
    ) -> Reply | None:
        """Delete the live row ``key`` (stamped ``hlc``) that ``node`` served: on that node (it
        holds the row live, so its tombstone orders after what the session saw), else through
        the balancer with the session's token; a node that no longer holds it live sends us to
        read it back. ``pinned``: the client chose ``node`` (``--node``): that node only.
        The answer of the DELETE that took (None: it was gone when read back)."""
        s.see_hlc(hlc)
        rounds = DELETE_ROUNDS
        fenced: frozenset[str] = frozenset()  # nodes that refused the delete: clock fenced
        step: deleteplan.DeleteStep = deleteplan.DeleteOn(node)
        took: Reply | None = None
        while True:
            if isinstance(step, deleteplan.Deleted):
                return took
            if isinstance(step, plan.Fail):
                raise step.error
            if isinstance(step, deleteplan.ReadBack):
                again, where = await self.get_raw(key, s, node if pinned else None)
                step = deleteplan.after_read_back(again is not None, where, fenced, self.nodes)
                continue
            rounds -= 1
            target = node if pinned else step.node
            outcome, answered, took = await self._delete_on(key, target, s)
            if outcome == "fenced" and answered is not None:
                fenced |= {answered}
            elsewhere = None if pinned else deleteplan.unfenced(self.nodes, fenced)
            step = deleteplan.next_delete(rounds, outcome, target is not None, elsewhere)

    async def _delete_on(
        self, key: str, node: str | None, s: Session
    ) -> tuple[str, str | None, Reply | None]:
        """Send one DELETE (pinned to ``node``, or through the balancer with the session's
        token); its outcome, the node that answered when the balancer says which, and the answer
        if it deleted."""
        extra = f"{wire.HLC_HEADER}: {s.hlc}\r\n{wire.WAIT_HEADER}: 0\r\n"
        if node is None:
            extra += _session_line(s.token)
        try:
            reply = await self.upstream._send("DELETE", f"/v1/kv/{key}", extra, node=node)
        except ErrUnavailable:
            if node is None:
                raise
            return "unreachable", node, None
        answered = reply.node or node
        if reply.status == 200:
            self.wrote(reply)
            s.absorb(reply.session)
            return "deleted", answered, reply
        err = self.upstream._error(reply)
        if isinstance(err, ErrNoDataFound):
            return "not live", answered, None
        if isinstance(err, ErrNotCaughtUp):
            return "behind", answered, None
        if isinstance(err, ErrClockSkew):
            return "fenced", answered, None
        if isinstance(err, ErrUnavailable) and node is not None:
            return "unreachable", answered, None
        raise err
