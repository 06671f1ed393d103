"""The data node's HTTP API over a `Store`: key/value rows, the change feed, replication.

Rule: handlers only parse, check, call the store and encode; every write wakes the waiters once it
is durable; every answer of /v1/kv* and /v1/changes carries the node's session contribution, whose
version is never ahead of the data the answer served.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import TypeVar

from dtm import wire
from dtm.config import NodeConfig
from dtm.core import session, sessiontoken
from dtm.core.deadline import too_late
from dtm.core.digest import DEFAULT_BUCKETS, MAX_BUCKETS
from dtm.core.pagetag import not_modified, page_tag
from dtm.errors import (
    ErrClockSkew,
    ErrNoDataFound,
    ErrNotCaughtUp,
    ErrPayloadTooLarge,
    ErrSyntaxInvalidArgs,
    ErrTimeout,
)
from dtm.httpkit import quoted
from dtm.node import params
from dtm.node.clockwatch import ClockWatch, Peer
from dtm.node.metrics import CONTENT_TYPE, NodeMetrics
from dtm.node.notify import Changes
from dtm.site import METHODS, Answer, Request, json_answer
from dtm.storage.base import Store, page_is_full
from dtm.storage.sqlite import CommitCounters

log = logging.getLogger(__name__)
T = TypeVar("T")

PUT_OVERHEAD = 1024  # body bytes allowed around the value (the {"value": ...} wrapper, spaces)
SMALL_BODY = 1024 * 1024  # cap for purge bodies
BUCKETS = params.IntRange(DEFAULT_BUCKETS, 1, MAX_BUCKETS)
BUCKET_INDEX = params.IntRange(0, 0, MAX_BUCKETS - 1)
SESSION_PATHS = ("/v1/kv", "/v1/changes")
HELD_LOG_EVERY_MS = 10_000  # held-back rows: at most one log line per source this often


_json = json_answer


def _max_hlc(rows: list[wire.Row]) -> int:
    return max((r.hlc for r in rows), default=0)


def _check_row(row: wire.Row, where: str) -> None:
    """A replicated row must be a well-formed write: the store trusts it as is. (Its key, version,
    hlc and origin are in range by their wire types; this is the one rule across two fields.)"""
    if row.deleted != (bytes(row.value) == b"null"):
        raise ErrSyntaxInvalidArgs(f"{where}: a row is a tombstone iff its value is null")


class NodeService:
    """The handlers of one data node, bound to its store and config."""

    def __init__(
        self,
        store: Store,
        cfg: NodeConfig,
        now_ms: Callable[[], int],
        commits: Callable[[], CommitCounters] | None = None,
        wall_ms: Callable[[], int] | None = None,
        peers: list[Peer] | None = None,
        client_ssl: ssl.SSLContext | None = None,
    ) -> None:
        self.store = store
        self.cfg = cfg
        self.now_ms = now_ms
        self.wall_ms = wall_ms or now_ms
        self.changes = Changes()
        self._held_logged: dict[str, tuple[int | None, int]] = {}
        self.clock = ClockWatch(peers or [], now_ms, cfg.max_clock_offset_ms, client_ssl=client_ssl)
        self.metrics = NodeMetrics(store, lambda: self.changes.waiters, commits, self.clock)

    def committed(self, group_size: int) -> None:
        """The store committed a group of writes: count it and wake every waiter."""
        self.metrics.group_size.observe(group_size)
        self.changes.fire()

    # ------------------------------------------------------------ helpers

    def _wrote(self, kind: str, n: int = 1) -> None:
        self.metrics.writes.labels(kind).inc(n)
        self.changes.fire()

    def _check_fence(self) -> None:
        """Refuse a client write while this node's clock is fenced (see dtm.core.clockfence)."""
        if self.clock.fenced:
            raise ErrClockSkew(
                f"node {self.store.node}: this clock is beyond {self.cfg.max_clock_offset_ms} ms "
                f"from most of its peers (offsets {self.clock.offsets}); write to another node"
            )

    def _note_held(self, source: str, version: int) -> None:
        """Log held-back rows once per HELD_LOG_EVERY_MS per source: the sync redelivers them
        every 100 ms until the clocks allow, and each time would be one more line."""
        now = self.wall_ms()
        last, count = self._held_logged.get(source, (None, 0))
        if last is not None and now - last < HELD_LOG_EVERY_MS:
            self._held_logged[source] = (last, count + 1)
            return
        self._held_logged[source] = (now, 0)
        log.warning(
            "held back rows of %s from version %d: stamped beyond the max clock offset ahead"
            " (%d more deliveries held since the last line)",
            quoted(source),
            version,
            count,
        )

    def _check_deadline(self, request: Request) -> int:
        """Refuse a forwarded write that arrived after its sender stopped waiting for it; else
        its deadline (0: none), which the store's writer checks again when it stamps or
        applies the write (`dtm.core.deadline`): a write may wait in its queue past it."""
        deadline = params.int_header(request, wire.DEADLINE_HEADER, params.HLC)
        if too_late(deadline, self.wall_ms(), self.cfg.max_clock_offset_ms):
            self.metrics.late_writes.inc()
            raise ErrTimeout(
                f"the write arrived {self.wall_ms() - deadline} ms after its deadline; not applied"
            )
        return deadline

    def _store_clock(self, deadline: int) -> int:
        """A replicate or purge deadline as the store's clock reads it, which the writer compares
        with that clock: the same moment as the arrival check's (they differ only by the test-only
        ``clock_offset_ms``). A client write's deadline is given as is: it bounds the stamp."""
        return deadline and deadline + self.now_ms() - self.wall_ms()

    async def _in_time(self, write: Awaitable[T]) -> T:
        """The store's answer to a write; one refused by the writer past its deadline counts as a
        late write."""
        try:
            return await write
        except ErrTimeout:
            self.metrics.late_writes.inc()
            raise

    def _claim(self, request: Request, version: int, hlc: int) -> None:
        request.state = (version, hlc)

    def finish(self, request: Request, resp: Answer, route: str, elapsed: float) -> None:
        """Attach the session contribution to every answer of /v1/kv* and /v1/changes; time
        every answer."""
        if request.path.startswith(SESSION_PATHS) and wire.SESSION_HEADER not in resp.headers:
            claim: tuple[int, int] | None = request.state
            version, hlc = claim if claim is not None else (self.store.last_version(), 0)
            token = session.contribution(self.store.node, self.store.epoch, version, hlc)
            resp.headers[wire.SESSION_HEADER] = sessiontoken.encode(token)
        method = request.method if request.method in METHODS else "other"
        self.metrics.observe(route, method, resp.status, elapsed)

    async def _catch_up(self, request: Request) -> None:
        """Hold a read until this replica meets the caller's session token (or answer 409)."""
        token = params.session_header(request)
        wait_ms = params.int_header(request, wire.WAIT_HEADER, params.SESSION_WAIT)
        if not token.versions:
            return
        store = self.store
        others = any(x != store.node for x in token.versions)

        def missing() -> list[str]:
            applied = store.stats().applied if others else {}
            return session.unmet(token, store.node, store.epoch, store.last_version(), applied)

        if not await self.changes.wait_for(lambda: not missing(), wait_ms):
            unmet = ", ".join(missing()) or "(met just now)"
            raise ErrNotCaughtUp(f"node {store.node} has not caught up with: {unmet}")

    # ------------------------------------------------------------ key/value

    async def put(self, request: Request) -> Answer:
        key = params.path_key(request)
        params.query(request, {})
        seen = params.int_header(request, wire.HLC_HEADER, params.HLC)
        body = params.read_body(request, self.cfg.max_value_bytes + PUT_OVERHEAD)
        canonical = params.canonical(params.decode(body, wire.PutBody, "body").value)
        if bytes(canonical) == b"null":
            raise ErrSyntaxInvalidArgs("value must not be null; use DELETE to remove a key")
        if len(canonical) > self.cfg.max_value_bytes:
            raise ErrPayloadTooLarge(
                f"value is {len(canonical)} bytes; the limit is {self.cfg.max_value_bytes}"
            )
        self._check_fence()
        deadline = self._check_deadline(request)
        row = await self._in_time(self.store.put(key, canonical, seen, deadline))
        self._claim(request, row.version, row.hlc)
        self._wrote("put")
        return _json(row)

    async def delete(self, request: Request) -> Answer:
        key = params.path_key(request)
        params.query(request, {})
        seen = params.int_header(request, wire.HLC_HEADER, params.HLC)
        self._check_fence()
        # Like a read: "not found" here must mean absent, not "not replicated here yet".
        await self._catch_up(request)
        deadline = self._check_deadline(request)
        row = await self._in_time(self.store.delete(key, seen, deadline))
        self._claim(request, row.version, row.hlc)
        self._wrote("delete")
        return _json(row)

    async def get(self, request: Request) -> Answer:
        key = params.path_key(request)
        q = params.query(request, {"tombstones": params.TOMBSTONES})
        tombstones = params.int_param(q, "tombstones", params.TOMBSTONES) == 1
        await self._catch_up(request)
        version = self.store.last_version()
        row = self.store.get(key)
        if row is None or (row.deleted and not tombstones):
            self._claim(request, version, 0)
            raise ErrNoDataFound(f"no key {key!r}")
        self._claim(request, max(version, row.version), row.hlc)
        return _json(row)

    async def scan(self, request: Request) -> Answer:
        q = params.query(
            request, {"after": None, "limit": params.LIMIT, "tombstones": params.TOMBSTONES}
        )
        after = params.key_param(q, "after")
        limit = params.int_param(q, "limit", params.LIMIT)
        tombstones = params.int_param(q, "tombstones", params.TOMBSTONES) == 1
        await self._catch_up(request)
        store = self.store
        version = store.last_version()
        tag = (
            None
            if tombstones
            else page_tag(store.node, store.epoch, version, self.cfg.max_page_bytes)
        )
        if tag is not None and not_modified(request.header("If-None-Match"), tag):
            self.metrics.pages_not_modified.inc()
            self._claim(request, version, 0)  # the caller's copy carries the page's own claim
            return Answer(304, headers={"ETag": tag})
        rows = store.scan(after, limit, self.cfg.max_page_bytes, tombstones)
        # Rows are read after the tag: a write between the two gives them a version above it,
        # which the claim (and so the tag's meaning) must not hide: such a page is not tagged.
        top = max([version, *(r.version for r in rows)])
        self._claim(request, top, _max_hlc(rows))
        more = len(rows) == limit or page_is_full(rows, self.cfg.max_page_bytes)
        resp = _json(wire.RowPage(rows, rows[-1].key if more else None))
        if tag is not None and top == version and store.last_version() == version:
            resp.headers["ETag"] = tag
        return resp

    # ------------------------------------------------------------ feed and replication

    async def feed(self, request: Request) -> Answer:
        q = params.query(
            request, {"since": params.SINCE, "limit": params.LIMIT, "wait": params.LONGPOLL}
        )
        since = params.int_param(q, "since", params.SINCE)
        limit = params.int_param(q, "limit", params.LIMIT)
        wait = params.int_param(q, "wait", params.LONGPOLL)
        await self._catch_up(request)
        store = self.store
        await self.changes.wait_for(lambda: store.last_version() > since, wait)
        version = store.last_version()
        rows = store.changes(since, limit, self.cfg.max_page_bytes)
        # Versions have no holes, so seeing a row at V proves everything up to V is committed.
        version = max([version, *(r.version for r in rows)])
        more = len(rows) < limit and page_is_full(rows, self.cfg.max_page_bytes)
        if more:
            # Cut short by bytes: say so (``more``), and answer as if the node were at the last
            # row's version, so a reader that takes a short page as complete asks for the rest.
            version = rows[-1].version
        self._claim(request, version, _max_hlc(rows))
        return _json(wire.ChangesPage(store.node, store.epoch, version, rows, more))

    async def replicate(self, request: Request) -> Answer:
        params.query(request, {})
        body = params.read_body(request, self.cfg.max_batch_bytes)
        batch = params.decode(body, wire.ReplicateRequest, "replicate batch")
        if batch.source == self.store.node:
            raise ErrSyntaxInvalidArgs(f"replicate batch: {batch.source} cannot feed itself")
        for i, row in enumerate(batch.rows):
            _check_row(row, f"replicate batch row {i}")
        deadline = self._store_clock(self._check_deadline(request))
        result = await self._in_time(self.store.replicate(batch, deadline))
        if result.held_from:
            self._note_held(batch.source, result.held_from)
        self.metrics.writes.labels("ignored").inc(result.ignored)
        self._wrote("replicated", result.applied)
        return _json(result)

    async def purge(self, request: Request) -> Answer:
        params.query(request, {})
        body = params.read_body(request, SMALL_BODY)
        req = params.decode(body, wire.PurgeRequest, "purge request")  # its types check each row
        deadline = self._store_clock(self._check_deadline(request))
        purged = await self._in_time(self.store.purge(list(req.rows), deadline))
        self.metrics.writes.labels("purged").inc(purged)
        return _json(wire.PurgeResponse(purged))

    # ------------------------------------------------------------ anti-entropy and status

    async def digest(self, request: Request) -> Answer:
        q = params.query(request, {"buckets": BUCKETS})
        buckets = params.int_param(q, "buckets", BUCKETS)
        version = self.store.last_version()
        hashes = self.store.digest(buckets)
        return _json(wire.Digest(self.store.node, self.store.epoch, version, hashes))

    async def bucket(self, request: Request) -> Answer:
        q = params.query(request, {"buckets": BUCKETS})
        buckets = params.int_param(q, "buckets", BUCKETS)
        bucket = params.parse_int(request.match, "bucket", BUCKET_INDEX)
        if bucket >= buckets:
            raise ErrSyntaxInvalidArgs(f"bucket must be in 0..{buckets - 1}, not {bucket}")
        rows = self.store.bucket_rows(bucket, buckets)
        return _json(wire.BucketRows(self.store.node, self.store.epoch, rows))

    async def healthz(self, request: Request) -> Answer:
        return _json(wire.Health("ok", "node", self.store.node, self.now_ms(), self.clock.fenced))

    async def status(self, request: Request) -> Answer:
        q = params.query(request, {"since": params.SINCE, "wait": params.LONGPOLL})
        store = self.store
        since = params.int_param(q, "since", params.SINCE)
        wait = params.int_param(q, "wait", params.LONGPOLL)
        if "since" in q:  # a watch: hold the answer until the version is not the caller's
            await self.changes.wait_for(lambda: store.last_version() != since, wait)
        # The version and the applied feeds of one snapshot (the writer thread may publish a new
        # one between the two reads; versions only grow, so reading the same one twice proves it).
        while True:
            version = store.last_version()
            s = store.stats()
            if store.last_version() == version:
                break
        return _json(
            wire.NodeStatus(
                self.store.node,
                self.store.epoch,
                version,
                s.live_rows,
                s.tombstones,
                s.hlc,
                s.skew_events,
                s.applied,
                self.clock.fenced,
                dict(self.clock.offsets),
            )
        )

    async def metrics_text(self, request: Request) -> Answer:
        return Answer(200, self.metrics.render(), CONTENT_TYPE.encode())

    def start(self) -> None:
        self.clock.start()

    async def stop(self) -> None:
        """Release parked long-polls so a graceful stop does not wait for their timeouts."""
        self.changes.close()
        await self.clock.stop()
