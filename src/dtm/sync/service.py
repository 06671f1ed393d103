"""The sync process's shell: it performs the work `SyncEngine` plans, and reports the answers back.

Rule: one asyncio loop per source node reads its feed (long-poll or fixed interval) and sends each
batch to its targets concurrently; a cursor moves only in `SyncEngine.on_ack`, after a target
answered; a failing node is retried with backoff and never blocks the others; cursors are saved
(atomically) after acknowledged batches; purges and anti-entropy run one at a time, under a lock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dtm import wire
from dtm.config import ClusterConfig, SyncConfig
from dtm.core.conflicts import Conflict
from dtm.core.digest import DEFAULT_BUCKETS
from dtm.core.repair import differing_buckets, plan_repairs
from dtm.core.syncplan import Batch
from dtm.core.syncstate import SyncEngine
from dtm.errors import DtmError
from dtm.sync import statefile
from dtm.sync.client import NodeClient
from dtm.sync.metrics import SyncMetrics

SAVE_EVERY_S = 0.05

log = logging.getLogger("dtm.sync")

BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 5.0
PURGE_INTERVAL_S = 1.0
DOWN_WAIT_CAP_MS = 500  # long-poll wait while some node is down, so its return is noticed soon
HELD_RETRY_S = 0.1  # a target held rows back (its clock is behind their stamps): read again after


@dataclass
class _Health:
    down_until: float = 0.0
    backoff: float = 0.0
    last_error: str = ""


def _retrieve(task: asyncio.Task[wire.ChangesPage]) -> None:
    """Mark a read-ahead's failure as seen (it is re-raised to whoever awaits the task)."""
    if not task.cancelled():
        task.exception()


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class SyncService:
    """All loops of one sync process over one cluster."""

    def __init__(
        self,
        cluster: ClusterConfig,
        cfg: SyncConfig,
        state_path: Path,
        engine: SyncEngine,
        client: NodeClient,
        now_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self.cluster = cluster
        self.cfg = cfg
        self.state_path = state_path
        self.engine = engine
        self.client = client
        self.now_ms = now_ms
        self.metrics = SyncMetrics(engine, now_ms)
        self.health = {n.name: _Health() for n in cluster.node}
        self.rounds = {n.name: 0 for n in cluster.node}
        self.anti_entropy: wire.AntiEntropyResult | None = None
        self._dirty = asyncio.Event()
        self._lock = asyncio.Lock()  # purge and anti-entropy, one at a time
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    # ------------------------------------------------------------ reachability

    def reachable(self) -> list[str]:
        now = time.monotonic()
        return [n for n in self.engine.members if self.health[n].down_until <= now]

    def _ok(self, node: str) -> None:
        h = self.health[node]
        if h.backoff:
            log.info("%s is reachable again", node)
        h.down_until = h.backoff = 0.0
        h.last_error = ""

    def _failed(self, node: str, call: str, err: Exception) -> None:
        h = self.health[node]
        h.backoff = min(BACKOFF_MAX_S, h.backoff * 2 if h.backoff else BACKOFF_MIN_S)
        h.down_until = time.monotonic() + h.backoff
        h.last_error = str(err)
        self.metrics.errors.labels(node, call).inc()
        log.warning("%s %s failed (retry in %.1fs): %s", node, call, h.backoff, err)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        for n in self.engine.members:
            self._tasks.append(asyncio.create_task(self._source_loop(n), name=f"source-{n}"))
        self._tasks.append(asyncio.create_task(self._persist_loop(), name="persist"))
        self._tasks.append(asyncio.create_task(self._purge_loop(), name="purge"))
        self._tasks.append(asyncio.create_task(self._anti_entropy_loop(), name="anti-entropy"))

    async def stop(self) -> None:
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self._save)

    def _save(self) -> None:
        statefile.save(self.state_path, self.engine.snapshot())

    async def _persist_loop(self) -> None:
        while True:
            await self._dirty.wait()
            # Let acknowledgements gather: one atomic save (two fsyncs) per SAVE_EVERY_S at
            # most. The file may lag memory; that only means re-delivery after a crash.
            await asyncio.sleep(SAVE_EVERY_S)
            self._dirty.clear()
            if self.engine.dirty:
                snap = self.engine.snapshot()
                try:
                    await asyncio.to_thread(statefile.save, self.state_path, snap)
                except OSError as exc:
                    self.engine.dirty = True
                    log.error("cannot save sync state to %s: %s", self.state_path, exc)
                    await asyncio.sleep(1.0)
                    self._dirty.set()

    def forget(self, node: str) -> None:
        """Remove ``node`` from the cluster for good."""
        self.engine.forget(node)
        self._dirty.set()
        log.warning("node %s forgotten: no longer synced, no longer holds purges back", node)

    # ------------------------------------------------------------ the cursor path

    async def _source_loop(self, source: str) -> None:
        interval = self.cfg.mode == "interval"
        ahead: tuple[int, asyncio.Task[wire.ChangesPage]] | None = None
        try:
            while source in self.engine.members:
                ahead = await self._source_step(source, interval, ahead)
        finally:
            if ahead is not None:
                ahead[1].cancel()

    async def _source_step(
        self,
        source: str,
        interval: bool,
        ahead: tuple[int, asyncio.Task[wire.ChangesPage]] | None,
    ) -> tuple[int, asyncio.Task[wire.ChangesPage]] | None:
        """One read of ``source``'s feed and its deliveries. While a backlog is paged, the next
        page is read while this one is delivered; it is used only if the cursors then start
        exactly where it was read from."""
        try:
            return await self._read_and_deliver(source, interval, ahead)
        finally:
            if ahead is not None and not ahead[1].done():
                ahead[1].cancel()  # not used (a no-op if it was)

    async def _read_and_deliver(
        self,
        source: str,
        interval: bool,
        ahead: tuple[int, asyncio.Task[wire.ChangesPage]] | None,
    ) -> tuple[int, asyncio.Task[wire.ChangesPage]] | None:
        h = self.health[source]
        delay = h.down_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
            return None
        reach = self.reachable()
        since = self.engine.plan_fetch(source, reach)
        if since is None:
            await asyncio.sleep(BACKOFF_MIN_S)
            return None
        # A node not heard from yet is read at once: its epoch is needed by the others.
        wait = 0 if interval or source not in self.engine.epochs else self.cfg.wait_ms
        if len(reach) < len(self.engine.members):
            wait = min(wait, DOWN_WAIT_CAP_MS)
        try:
            if ahead is not None and ahead[0] == since:
                page = await ahead[1]
            else:
                page = await self.client.changes(source, since, self.cfg.batch, wait)
            if page.node != source:
                raise DtmError(f"{source} answered as node {page.node!r}")
        except DtmError as exc:
            self._failed(source, "changes", exc)
            return None
        self._ok(source)
        self.rounds[source] += 1
        self.metrics.pages.labels(source).inc()
        out = self.engine.on_page(source, since, self.cfg.batch, page, reach, self.now_ms())
        self._report(out.conflicts)
        if out.refetch:
            log.info("%s has a new epoch %s: reading its feed again", source, page.epoch)
            return None
        full = len(page.rows) >= self.cfg.batch
        nxt: tuple[int, asyncio.Task[wire.ChangesPage]] | None = None
        if full and out.batches:
            at = out.batches[0].reach
            task = asyncio.create_task(self.client.changes(source, at, self.cfg.batch, 0))
            task.add_done_callback(_retrieve)
            nxt = (at, task)
        if out.batches:
            # While catching up on a backlog, skip the look before writing: it would read
            # back as much as is written.
            sent = await asyncio.gather(*(self._send(b, look=not full) for b in out.batches))
            if any(sent):
                await asyncio.sleep(HELD_RETRY_S)  # the cursor stayed before the held rows
                return None
        if interval and not full:
            await asyncio.sleep(self.cfg.interval_ms / 1000.0)
        return nxt

    async def _send(self, batch: Batch, look: bool = True) -> bool:
        """Deliver one batch; True if the target held rows back (to be delivered again)."""
        start = time.perf_counter()
        try:
            if batch.rows and look:
                await self._look_before_writing(batch.target)
            resp = await self.client.replicate(batch.target, batch.request())
        except DtmError as exc:
            self._failed(batch.target, "replicate", exc)
            return False
        self._ok(batch.target)
        self.metrics.replicate_seconds.observe(time.perf_counter() - start)
        found = self.engine.on_ack(batch, resp, self.now_ms())
        self.metrics.rows.labels(batch.source, batch.target).inc(len(batch.rows))
        self.metrics.batches.labels(batch.source, batch.target).inc()
        self.metrics.applied.labels(batch.target).inc(resp.applied)
        self._report(found)
        if self.engine.dirty:
            self._dirty.set()
        if resp.held_from:
            log.debug(
                "%s held back %s's rows from version %d (stamped ahead of its clock): retrying",
                batch.target,
                batch.source,
                resp.held_from,
            )
        return resp.held_from != 0

    async def _look_before_writing(self, target: str) -> None:
        """Read the target's newest changes just before writing into it, so a local write that
        the batch is about to overwrite is seen (and logged as a conflict), not lost silently."""
        since = self.engine.observed.get(target)
        if since is None:
            return
        page = await self.client.changes(target, since, self.cfg.batch, 0)
        self._report(self.engine.observe(target, page, since, self.cfg.batch, self.now_ms()))

    def _report(self, found: tuple[Conflict, ...] | list[Conflict]) -> None:
        for c in found:
            self.metrics.conflicts.inc()
            log.info(
                "conflict on %s at %s: kept %s (hlc %d from %s) over %s (hlc %d from %s)",
                c.key,
                c.node,
                "delete" if c.winner.deleted else "write",
                c.winner.hlc,
                c.winner.origin,
                "delete" if c.loser.deleted else "write",
                c.loser.hlc,
                c.loser.origin,
            )

    # ------------------------------------------------------------ tombstones

    async def _purge_loop(self) -> None:
        while True:
            await asyncio.sleep(PURGE_INTERVAL_S)
            async with self._lock:
                await self.purge_once()

    async def purge_once(self) -> int:
        """Send every decided purge to the reachable nodes; returns rows purged."""
        plan = self.engine.purge_plan(self.reachable(), self.now_ms())
        total = 0
        for node, rids in sorted(plan.items()):
            for i in range(0, len(rids), 1000):
                chunk = rids[i : i + 1000]
                try:
                    resp = await self.client.purge(node, chunk)
                except DtmError as exc:
                    self._failed(node, "purge", exc)
                    break
                self.engine.on_purged(node, chunk, resp.purged)
                self.metrics.purged.inc(resp.purged)
                total += resp.purged
        if total:
            log.info("purged %d tombstones", total)
        return total

    # ------------------------------------------------------------ anti-entropy

    async def _anti_entropy_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.anti_entropy_interval_ms / 1000.0)
            owed = self.engine.backlog(self.reachable())
            if owed:
                log.info("anti-entropy waits: the cursor path still owes %d versions", owed)
                continue
            async with self._lock:
                await self.anti_entropy_once()

    async def anti_entropy_once(self, buckets: int = DEFAULT_BUCKETS) -> wire.AntiEntropyResult:
        """Compare digests of the reachable nodes and repair differing buckets."""
        nodes = self.reachable()
        digests: dict[str, wire.Digest] = {}
        repaired = 0
        differing: list[int] = []
        error: str | None = None
        try:
            for n in nodes:
                d = await self.client.digest(n, buckets)
                self.engine.learn_epoch(n, d.epoch, d.last_version)
                digests[n] = d
            differing = differing_buckets(digests)
            for b in differing:
                rows = {n: await self.client.bucket(n, b, buckets) for n in digests}
                for rep in plan_repairs(rows, self.engine.repair_skip()):
                    req = wire.ReplicateRequest(rep.holder, rep.holder_epoch, 0, list(rep.rows))
                    resp = await self.client.replicate(rep.target, req)
                    self.engine.on_repaired(rep, resp, rows[rep.target].epoch)
                    repaired += resp.applied
        except DtmError as exc:
            error = exc.message
            log.warning("anti-entropy stopped early: %s", exc)
        result = wire.AntiEntropyResult(
            self.now_ms(), sorted(digests), buckets, len(differing), repaired, error
        )
        self.anti_entropy = result
        self.metrics.ae_runs.inc()
        self.metrics.repaired.inc(repaired)
        level = logging.WARNING if repaired else logging.INFO
        log.log(
            level,
            "anti-entropy over %s: %d of %d buckets differed, %d rows repaired",
            ",".join(sorted(digests)),
            len(differing),
            buckets,
            repaired,
        )
        return result

    # ------------------------------------------------------------ status

    def status(self) -> wire.SyncStatus:
        eng = self.engine
        now = self.now_ms()
        reach = set(self.reachable())
        pairs: list[wire.SyncPair] = []
        for s in eng.members:
            for t in eng.members:
                if s == t:
                    continue
                cur, lag, lag_s = eng.lag(s, t, now)
                pairs.append(
                    wire.SyncPair(
                        s,
                        t,
                        cur,
                        eng.last_versions.get(s, 0),
                        lag,
                        lag_s,
                        eng.rows_sent.get((s, t), 0),
                        eng.pair_conflicts.get((s, t), 0),
                        s in reach and t in reach,
                    )
                )
        holds = [
            wire.PurgeHold(rid.key, rid.hlc, rid.origin, reasons)
            for rid, reasons in eng.purge_holds()
        ]
        return wire.SyncStatus(
            "sync",
            self.cfg.mode,
            list(eng.nodes),
            sorted(eng.forgotten),
            dict(eng.epochs),
            pairs,
            eng.conflict_total,
            len(eng.candidates),
            holds,
            eng.purged,
            self.anti_entropy,
            dict(self.rounds),
            {n: h.last_error for n, h in self.health.items() if h.last_error},
        )

    def conflicts(self) -> wire.ConflictLog:
        return wire.ConflictLog(
            self.engine.conflict_total,
            [
                wire.ConflictEntry(c.key, c.winner, c.loser, c.node, c.at_ms)
                for c in self.engine.conflict_log
            ],
        )
