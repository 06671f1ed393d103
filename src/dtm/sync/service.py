"""The sync process's shell: it performs the work `SyncLoop.ready` hands out and steps the answers
back in; every decision is the loop's.

Rule: one task runs the loop (ready -> perform each item concurrently -> step each answer in);
every call's failure is reported as `Failed`, blamed on the node unless this process was itself
frozen while the call ran (a heartbeat notices); log lines are the loop's notes; conflicts go to
the on-disk conflict log. A crash point (`dtm.core.crashpoint`, armed only by the process's
environment) SIGKILLs this process when an answer reaches it, before the loop takes it in.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from dtm import wire
from dtm.config import ClusterConfig, SyncConfig
from dtm.core.crashpoint import CrashPoint
from dtm.core.digest import DEFAULT_BUCKETS
from dtm.core.repair import Repair, differing_buckets, moved_epochs, plan_repairs
from dtm.core.syncloop import SyncLoop
from dtm.core.syncstate import SyncEngine
from dtm.core.syncwork import (
    AntiEntropy,
    Event,
    Failed,
    Fetch,
    Fetched,
    Forget,
    LoopConfig,
    Purge,
    Purged,
    Repaired,
    Save,
    Saved,
    Send,
    Sent,
    Tick,
    Work,
)
from dtm.errors import DtmError
from dtm.sync import statefile
from dtm.sync.client import NodeClient
from dtm.sync.conflictlog import ConflictStore
from dtm.sync.metrics import SyncMetrics

log = logging.getLogger("dtm.sync")

CALLS: dict[type, str] = {
    Fetch: "changes",
    Send: "replicate",
    Purge: "purge",
    AntiEntropy: "anti-entropy",
    Save: "state-file",
}
BEAT_S = 0.1
PAUSE_S = 1.0  # a heartbeat this late means this process was frozen (SIGSTOP, a stalled host)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def loop_config(cfg: SyncConfig) -> LoopConfig:
    return LoopConfig(
        batch=cfg.batch,
        wait_ms=cfg.wait_ms,
        interval_ms=cfg.interval_ms if cfg.mode == "interval" else None,
        anti_entropy_every_ms=cfg.anti_entropy_interval_ms,
    )


class SyncService:
    """The one loop of one sync process over one cluster."""

    def __init__(
        self,
        cluster: ClusterConfig,
        cfg: SyncConfig,
        state_path: Path,
        engine: SyncEngine,
        client: NodeClient,
        conflicts: ConflictStore,
        now_ms: Callable[[], int] = wall_ms,
        crash: CrashPoint | None = None,
    ) -> None:
        self.cluster = cluster
        self.cfg = cfg
        self.state_path = state_path
        self.engine = engine
        self.client = client
        self.store = conflicts
        self.now_ms = now_ms
        self.loop = SyncLoop(engine, loop_config(cfg), now_ms())
        self.metrics = SyncMetrics(engine, now_ms)
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._main: list[asyncio.Task[None]] = []
        self._beat = time.monotonic()
        self._paused_until = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_ms = 0
        self.crash = crash
        if crash is not None:
            log.warning(
                "crash point armed: this process dies the %d. time a %s answer comes back",
                crash.count,
                crash.step,
            )

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._main.append(asyncio.create_task(self._run(), name="sync-loop"))
        self._main.append(asyncio.create_task(self._heartbeat(), name="heartbeat"))

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for t in [*self._main, *self._tasks]:
            t.cancel()
        await asyncio.gather(*self._main, *self._tasks, return_exceptions=True)
        await asyncio.to_thread(statefile.save_durably, self.state_path, self.engine.snapshot())

    def forget(self, node: str) -> None:
        """Remove ``node`` from the cluster for good (and wake the loop)."""
        self.loop.step(Forget(node, self.now_ms()))
        self._events.put_nowait(Tick(self.now_ms()))

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(BEAT_S)
            now = time.monotonic()
            gap = now - self._beat
            if gap > PAUSE_S:
                self._paused_until = now
                log.warning(
                    "this sync process did not run for %.1f s (paused or starved): calls that"
                    " timed out meanwhile are retried, not blamed on the nodes",
                    gap,
                )
            self._beat = now

    def _was_paused(self, started: float) -> bool:
        """True if this process was frozen at some point since ``started`` (monotonic)."""
        return time.monotonic() - self._beat > PAUSE_S or started < self._paused_until

    # ------------------------------------------------------------ the loop

    async def _run(self) -> None:
        while True:
            try:
                await self._turn()
            except Exception:  # a bug in a decision: say so loudly, keep syncing
                log.exception("the sync loop failed a turn; going on in 1 s")
                await asyncio.sleep(1.0)

    async def _turn(self) -> None:
        """One turn: hand out the ready work, then step in the next answers."""
        rd = self.loop.ready(self.now_ms())
        for note in rd.notes:
            log.log(note.level, "%s", note.text)
        self._take_conflicts()
        for w in rd.work:
            task = asyncio.create_task(self._perform(w))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._wake_at(rd.wake_ms)
        self.loop.step(await self._events.get())
        while not self._events.empty():
            self.loop.step(self._events.get_nowait())

    def _wake_at(self, wake_ms: int) -> None:
        """A Tick lands in the event queue at ``wake_ms`` (one timer, moved only if it must)."""
        if self._timer is not None and self._timer_ms <= wake_ms and not self._timer.cancelled():
            return  # an earlier wake-up is already set: the next ready() sets the later one
        if self._timer is not None:
            self._timer.cancel()
        delay = max(0.0, (wake_ms - self.now_ms()) / 1000.0)
        self._timer_ms = wake_ms
        self._timer = asyncio.get_running_loop().call_later(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._events.put_nowait(Tick(self.now_ms()))

    def _take_conflicts(self) -> None:
        found, self.loop.conflicts = self.loop.conflicts, []
        if not found:
            return
        self.metrics.conflicts.inc(len(found))
        for c in found:
            log.info(
                "conflict on %s at %s: kept %s (hlc %d from %s), lost %s (hlc %d from %s)",
                c.key,
                c.node,
                "delete" if c.winner.deleted else "write",
                c.winner.hlc,
                c.winner.origin,
                "delete" if c.loser.deleted else "write",
                c.loser.hlc,
                c.loser.origin,
            )
        try:
            self.store.append(found)
        except OSError as exc:
            log.error("cannot write the conflict log: %s", exc)

    async def _perform(self, w: Work) -> None:
        started = time.monotonic()
        self.metrics.calls.labels(CALLS[type(w)]).inc()
        try:
            ev = await self._do(w)
        except DtmError as exc:
            node = _node_of(w)
            self.metrics.errors.labels(node, CALLS[type(w)]).inc()
            ev = Failed(w, node, exc.message, self.now_ms(), self._was_paused(started))
        except OSError as exc:  # the cursor file
            ev = Failed(w, "", str(exc), self.now_ms())
        except Exception as exc:  # a bug: report it, and never leave the item in flight
            log.exception("%s failed unexpectedly", type(w).__name__)
            ev = Failed(w, _node_of(w), f"internal error: {exc!r}", self.now_ms())
        if self.crash is not None and self.crash.due(ev):
            log.warning("crash point %s:%d reached: SIGKILL", self.crash.step, self.crash.count)
            os.kill(os.getpid(), signal.SIGKILL)
        self._events.put_nowait(ev)

    async def _do(self, w: Work) -> Event:
        if isinstance(w, Fetch):
            page = await self.client.changes(w.source, w.since, w.limit, w.wait_ms)
            self.metrics.pages.labels(w.source).inc()
            return Fetched(w, page, self.now_ms())
        if isinstance(w, Send):
            return await self._send(w)
        if isinstance(w, Purge):
            resp = await self.client.purge(w.node, list(w.rids))
            self.metrics.purged.inc(resp.purged)
            return Purged(w, resp.purged, self.now_ms())
        if isinstance(w, AntiEntropy):
            return await self._anti_entropy(w)
        await asyncio.to_thread(statefile.save, self.state_path, w.state)
        return Saved(w, self.now_ms())

    async def _send(self, w: Send) -> Sent:
        b = w.batch
        start = time.perf_counter()
        looked = None
        if w.look_since is not None:
            looked = await self.client.changes(b.target, w.look_since, self.cfg.batch, 0)
        resp = await self.client.replicate(b.target, b.request())
        self.metrics.replicate_seconds.observe(time.perf_counter() - start)
        self.metrics.rows.labels(b.source, b.target).inc(len(b.rows))
        self.metrics.batches.labels(b.source, b.target).inc()
        self.metrics.applied.labels(b.target).inc(resp.applied)
        return Sent(w, looked, resp, self.now_ms())

    async def _anti_entropy(self, w: AntiEntropy, buckets: int = DEFAULT_BUCKETS) -> Repaired:
        """Compare the digests of ``w.nodes`` and repair the differing buckets."""
        epochs: dict[str, tuple[str, int]] = {}
        repairs: list[tuple[Repair, wire.ReplicateResponse, str]] = []
        digests: dict[str, wire.Digest] = {}
        differing: list[int] = []
        error: str | None = None
        try:
            for n in w.nodes:
                d = await self.client.digest(n, buckets)
                epochs[n] = (d.epoch, d.last_version)
                digests[n] = d
            moved = moved_epochs(dict(w.epochs), digests)
            if moved:
                error = f"{', '.join(moved)}: at another epoch than last read (wiped or restored);"
                error += " its feed is copied again first"
            differing = [] if moved else differing_buckets(digests)
            for bucket in differing:
                rows = {n: await self.client.bucket(n, bucket, buckets) for n in digests}
                for rep in plan_repairs(rows, set(w.skip)):
                    req = wire.ReplicateRequest(rep.holder, rep.holder_epoch, 0, list(rep.rows))
                    resp = await self.client.replicate(rep.target, req)
                    repairs.append((rep, resp, rows[rep.target].epoch))
        except DtmError as exc:
            error = exc.message
        self.metrics.ae_runs.inc()
        self.metrics.repaired.inc(sum(r.applied for _, r, _ in repairs))
        return Repaired(w, epochs, repairs, len(differing), buckets, error, self.now_ms())

    # ------------------------------------------------------------ status

    def status(self) -> wire.SyncStatus:
        eng = self.engine
        loop = self.loop
        now = self.now_ms()
        reach = set(loop.reachable())
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
            self.store.total,
            len(eng.candidates),
            holds,
            eng.purged,
            loop.anti_entropy,
            dict(loop.rounds),
            {n: h.last_error for n, h in loop.health.items() if h.last_error},
        )

    def conflicts(self, limit: int) -> wire.ConflictLog:
        return self.store.read(limit)


def _node_of(w: Work) -> str:
    if isinstance(w, Fetch):
        return w.source
    if isinstance(w, Send):
        return w.batch.target
    if isinstance(w, Purge):
        return w.node
    if isinstance(w, AntiEntropy):
        return ""  # a pass stops early on its own; Repaired says why
    return ""
