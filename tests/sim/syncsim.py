"""A deterministic simulation of the sync process over N in-memory data nodes.

One seed fixes everything: a manual clock (with a fixed skew per node, so two nodes may be up to
twice the max offset apart: stamps are refused and rows held back), random client writes,
deletes and re-creates on every node (some through sessions, some retried on another node with a
late copy of the same write landing afterwards), a network that drops, duplicates, delays and
reorders calls (a call not answered within the call timeout fails and is never applied),
partitions between the sync process and nodes, a node moving to another address (the shell
resolves names again on reconnect), sync crashes between any two steps (keeping only its
persisted state; calls it had in flight may still land) — at random, or at a named crash point
of `dtm.core.crashpoint` again and again (``crash_after``, as the service's failpoint does) —
and epoch resets (a node wiped to a
new empty store under live sessions). The sync side is the very `SyncLoop` the service runs:
this file only performs the work its `ready()` hands out and steps the answers back in, exactly
as `dtm.sync.service` does.

After healing, `quiesce` runs sync rounds until nothing moves, and `check` compares every node
with the last-writer-wins oracle of the acknowledged writes.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import msgspec

from dtm.core import crashpoint, session
from dtm.core.order import write_id
from dtm.core.repair import Repair, differing_buckets, moved_epochs, plan_repairs
from dtm.core.syncloop import SyncLoop
from dtm.core.syncstate import SyncEngine
from dtm.core.syncwork import (
    AntiEntropy,
    Event,
    Failed,
    Fetch,
    Fetched,
    LoopConfig,
    Purge,
    Purged,
    Repaired,
    Save,
    Saved,
    Send,
    Sent,
    Work,
)
from dtm.errors import ErrNoDataFound, ErrNotCaughtUp, ErrSyntaxInvalidArgs
from dtm.storage.memory import MemoryStore
from dtm.wire import (
    BucketRows,
    ChangesPage,
    Digest,
    ReplicateRequest,
    ReplicateResponse,
    Row,
    SessionToken,
    SyncStateFile,
    decode,
    encode,
)

T = TypeVar("T")

KEYS = [f"k{i}" for i in range(8)]
MAX_SKEW_MS = 20
CALL_TIMEOUT_MS = 10  # a call not answered this long after it was sent fails, never applied
BUCKETS = 8
SESSIONS = 3
STEP_CRASHES = 8  # crashes at the crash point ``crash_after`` per run, at most
LOOP = LoopConfig(
    wait_ms=20,
    coalesce_ms=1,
    applied_delay_ms=2,
    save_every_ms=1,
    purge_every_ms=5,
    anti_entropy_every_ms=60,
    backoff_min_ms=1,
    backoff_max_ms=8,
    held_retry_ms=1,
)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (every MemoryStore method) to completion."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    raise AssertionError("a MemoryStore call suspended")


@dataclass
class Faults:
    drop_request: float = 0.05
    drop_response: float = 0.05
    duplicate: float = 0.1
    crash: float = 0.02
    partition: float = 0.02
    wipe: float = 0.004
    move: float = 0.005  # a node's address changes
    retry: float = 0.1  # a client write is retried on another node; its late copy lands later


@dataclass
class Stats:
    steps: int = 0
    crashes: int = 0
    step_crashes: int = 0  # crashes at the crash point ``crash_after``
    wipes: int = 0
    purged: int = 0
    repaired: int = 0
    ae_waited: int = 0  # anti-entropy passes that found a node at another epoch: no repair
    conflicts: int = 0
    refused: int = 0  # client writes whose seen stamp was beyond the node's max offset
    held: int = 0  # deliveries in which the target held rows back (too far ahead of its clock)
    moves: int = 0
    late_copies: int = 0
    session_reads: int = 0
    stale_reads: int = 0  # a session read served without the session's own write
    calls: int = 0


@dataclass
class InFlight:
    work: Work
    sent_at: int
    proc: SyncProc | None  # None: its sync process crashed (the call may still land)


@dataclass
class SyncProc:
    disk: bytes | None
    loop: SyncLoop
    resolved: dict[str, int] = field(default_factory=dict)  # node -> address the shell uses


@dataclass
class Session:
    token: SessionToken = field(default_factory=lambda: SessionToken({}, {}, 0))
    wrote: dict[str, Row] = field(default_factory=dict)  # key -> this session's last write


def _engine(names: list[str]) -> SyncEngine:
    return SyncEngine(names, recent=64, purge_fence_ms=4 * CALL_TIMEOUT_MS + 1)


@dataclass
class Sim:
    seed: int
    n: int
    limit: int
    faults: Faults = field(default_factory=Faults)
    two_syncs: float = 0.0
    resolve_again: bool = True  # the shell's DNS: resolve on every new connection
    crash_after: str | None = None  # a step of `dtm.core.crashpoint.STEPS`: crash there, often

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.t = 1_000_000
        self.names = [f"n{i}" for i in range(1, self.n + 1)]
        self.skew = {x: self.rng.randint(-MAX_SKEW_MS, MAX_SKEW_MS) for x in self.names}
        self.gen = dict.fromkeys(self.names, 0)
        self.address = dict.fromkeys(self.names, 0)
        self.stores = {x: self._new_store(x) for x in self.names}
        self.down_until = dict.fromkeys(self.names, 0)  # a wiped node restarting
        self.partitioned: set[str] = set()
        self.acked: dict[str, list[Row]] = {k: [] for k in KEYS}
        self.vulnerable: set[tuple[str, int, str]] = set()
        self.max_hlc = 0
        self.stats = Stats()
        self.sessions = [Session() for _ in range(SESSIONS)]
        self.late: list[tuple[str, Row, int]] = []  # (node, write, when it lands)
        self.inflight: list[InFlight] = []
        # One or two sync processes at once, each with its own state file and calls in flight.
        self.procs = [self._proc(None)]
        if self.rng.random() < self.two_syncs:
            self.procs.append(self._proc(None))
        self.lossy = True
        self.crash_point = self._arm()

    def _arm(self) -> crashpoint.CrashPoint | None:
        """A fresh crash point at ``crash_after``, due after 1 to 4 passes; none once it crashed
        the sync `STEP_CRASHES` times (it stays armed while healing: purges and repairs happen
        mostly then)."""
        if self.crash_after is None or self.stats.step_crashes >= STEP_CRASHES:
            return None
        return crashpoint.CrashPoint(self.crash_after, self.rng.randint(1, 4))

    def _proc(self, disk: bytes | None) -> SyncProc:
        eng = _engine(self.names)
        if disk is not None:
            eng.restore(decode(disk, SyncStateFile))
        return SyncProc(disk, SyncLoop(eng, replace(LOOP, batch=self.limit), self.t))

    # ------------------------------------------------------------ world

    def _new_store(self, x: str) -> MemoryStore:
        # An epoch as a node makes one: 16 hex characters (here derived, for replays).
        epoch = hashlib.blake2b(f"{x}-e{self.gen[x]}".encode(), digest_size=8).hexdigest()
        return MemoryStore(x, epoch, lambda: self.t + self.skew[x], MAX_SKEW_MS)

    def up(self, x: str) -> bool:
        return x not in self.partitioned and self.down_until[x] <= self.t

    def _ack(self, row: Row) -> None:
        self.acked[row.key].append(row)
        self.max_hlc = max(self.max_hlc, row.hlc)

    def client_write(self) -> None:
        x = self.rng.choice(self.names)
        if self.down_until[x] > self.t:
            return
        key = self.rng.choice(KEYS)
        sess = self.rng.choice(self.sessions) if self.rng.random() < 0.5 else None
        seen = self.max_hlc if self.rng.random() < 0.5 else 0
        if sess is not None:
            seen = sess.token.hlc
        store = self.stores[x]
        try:
            if self.rng.random() < 0.3:
                row = run(store.delete(key, seen))
            else:
                value = msgspec.Raw(encode({"w": self.stats.steps, "on": x}))
                row = run(store.put(key, value, seen))
        except ErrNoDataFound:
            return
        except ErrSyntaxInvalidArgs:  # the seen stamp is too far ahead of this node's clock
            self.stats.refused += 1
            return
        self._ack(row)
        if sess is not None:
            got = session.contribution(x, store.epoch, row.version, row.hlc)
            sess.token = session.merge_tokens(sess.token, got)
            sess.wrote[key] = row
        others = [y for y in self.names if y != x]
        if self.lossy and self.rng.random() < self.faults.retry:
            # The first attempt went to another node, which was frozen: the balancer retried it
            # here. The frozen node applies its copy later, as the same write (same stamp).
            self.late.append((self.rng.choice(others), row, self.t + self.rng.randint(1, 40)))

    def land_late_copies(self) -> None:
        keep: list[tuple[str, Row, int]] = []
        for x, row, when in self.late:
            if when > self.t:
                keep.append((x, row, when))
            elif self.down_until[x] <= self.t and x != row.origin:
                store = self.stores[x]
                epoch = self.stores[row.origin].epoch
                run(store.replicate(ReplicateRequest(row.origin, epoch, 0, [row])))
                self.stats.late_copies += 1
        self.late = keep

    def session_read(self) -> None:
        """A session reads every key on a node that may serve its token (the session rule)."""
        sess = self.rng.choice(self.sessions)
        x = self.rng.choice(self.names)
        if self.down_until[x] > self.t or not sess.wrote:
            return
        store = self.stores[x]
        st = store.stats()
        if session.unmet(sess.token, x, store.epoch, store.last_version(), st.applied):
            return
        self.stats.session_reads += 1
        for key, mine in sess.wrote.items():
            if (mine.key, mine.hlc, mine.origin) in self.vulnerable:
                continue  # lost with a wiped node: nobody can show it
            got = store.get(key)
            if got is None and any(
                w.deleted and write_id(w) >= write_id(mine) for w in self.acked[key]
            ):
                continue  # deleted (by this session or later), the tombstone purged since
            if got is None or write_id(got) < write_id(mine):
                self.stats.stale_reads += 1

    def wipe(self, x: str) -> None:
        """Replace ``x`` by an empty store with a new epoch; it is down for a while."""
        others = [self.stores[y] for y in self.names if y != x]
        for rows in self.acked.values():
            for w in rows:
                held = any(
                    (r := s.get(w.key)) is not None and write_id(r) == write_id(w) for s in others
                )
                if not held:
                    self.vulnerable.add((w.key, w.hlc, w.origin))
        self.late = [(y, r, w) for y, r, w in self.late if y != x]
        self.gen[x] += 1
        self.stores[x] = self._new_store(x)
        self.down_until[x] = self.t + 2 * MAX_SKEW_MS + 2
        self.stats.wipes += 1

    def move(self, x: str) -> None:
        """``x`` comes back at another address (its name now resolves there)."""
        self.address[x] += 1
        self.stats.moves += 1

    # ------------------------------------------------------------ the shell's part

    def crash(self, proc: SyncProc) -> None:
        """A sync process dies: its memory is gone; calls it had in flight may still land."""
        for f in self.inflight:
            if f.proc is proc:
                f.proc = None
        fresh = self._proc(proc.disk)
        proc.loop, proc.resolved = fresh.loop, {}
        self.stats.crashes += 1

    def ready(self, proc: SyncProc) -> None:
        """What the service does after every event: take the work ``ready`` hands out."""
        rd = proc.loop.ready(self.t)
        self.inflight += [InFlight(w, self.t, proc) for w in rd.work]

    def _reach(self, proc: SyncProc | None, x: str) -> bool:
        """Can the shell reach ``x``? A moved node is reached only at its new address."""
        if not self.up(x):
            return False
        if proc is None:
            return True
        have = proc.resolved.setdefault(x, self.address[x])
        if have != self.address[x]:
            if self.resolve_again:
                del proc.resolved[x]  # the connection failed: resolve again next time
            return False
        return True

    def _lose(self) -> bool:
        return self.lossy and self.rng.random() < self.faults.drop_request

    def _page(self, store: MemoryStore, since: int, limit: int) -> ChangesPage:
        """What `GET /v1/changes` answers: last_version read before the rows."""
        top = store.last_version()
        rows = store.changes(since, limit)
        return ChangesPage(store.node, store.epoch, max([top, *(r.version for r in rows)]), rows)

    def complete(self, f: InFlight) -> None:
        """The network answers one call (or it fails); its event goes to its sync process."""
        self.inflight.remove(f)
        self.stats.calls += 1
        ev = self._perform(f)
        cp = self.crash_point
        if f.proc is not None and ev is not None and cp is not None and cp.due(ev):
            self.crash(f.proc)  # the call had its effect; the answer dies with the process
            self.stats.step_crashes += 1
            self.crash_point = self._arm()
            return
        if f.proc is not None and ev is not None:
            f.proc.loop.step(ev)
            self.stats.conflicts += len(f.proc.loop.conflicts)
            f.proc.loop.conflicts.clear()
            self.ready(f.proc)

    def _perform(self, f: InFlight) -> Event | None:
        w, p = f.work, f.proc
        if isinstance(w, Save):
            if p is not None:
                p.disk = encode(w.state)
            return Saved(w, self.t)
        node = _node(w)
        wait = w.wait_ms if isinstance(w, Fetch) else 0
        timed_out = self.t - f.sent_at > CALL_TIMEOUT_MS + wait
        if node and (timed_out or not self._reach(p, node) or self._lose()):
            return Failed(w, node, "unreachable, dropped or timed out", self.t)
        try:
            ev = self._call(w)
        except ErrNotCaughtUp as exc:  # a batch for an old epoch: the shell reports it failed
            return Failed(w, node, exc.message, self.t)
        if self.lossy and self.rng.random() < self.faults.drop_response:
            return Failed(w, node, "answer lost", self.t)
        return ev

    def _call(self, w: Work) -> Event:
        if isinstance(w, Fetch):
            page = self._page(self.stores[w.source], w.since, w.limit)
            return Fetched(w, page, self.t)
        if isinstance(w, Send):
            return self._send(w)
        if isinstance(w, Purge):
            n = run(self.stores[w.node].purge(list(w.rids)))
            self.stats.purged += n
            return Purged(w, n, self.t)
        assert isinstance(w, AntiEntropy)
        return self._anti_entropy(w)

    def _send(self, w: Send) -> Sent:
        b = w.batch
        target = self.stores[b.target]
        looked = None
        if w.look_since is not None:
            looked = self._page(target, w.look_since, self.limit)
        req: ReplicateRequest = b.request()
        resp = run(target.replicate(req))
        self.stats.held += resp.held_from != 0
        if self.lossy and self.rng.random() < self.faults.duplicate:
            run(target.replicate(req))
        return Sent(w, looked, resp, self.t)

    def _anti_entropy(self, w: AntiEntropy) -> Repaired:
        reach = [x for x in w.nodes if self.up(x)]
        digests: dict[str, Digest] = {}
        for x in reach:
            s = self.stores[x]
            digests[x] = Digest(x, s.epoch, s.last_version(), s.digest(BUCKETS))
        epochs = {x: (d.epoch, d.last_version) for x, d in digests.items()}
        repairs: list[tuple[Repair, ReplicateResponse, str]] = []
        moved = moved_epochs(dict(w.epochs), digests)
        differing = [] if moved else differing_buckets(digests)
        self.stats.ae_waited += bool(moved)
        for bucket in differing:
            rows = {
                x: BucketRows(x, self.stores[x].epoch, self.stores[x].bucket_rows(bucket, BUCKETS))
                for x in reach
            }
            for rep in plan_repairs(rows, w.skip):
                target = self.stores[rep.target]
                req = ReplicateRequest(rep.holder, rep.holder_epoch, 0, list(rep.rows))
                resp = run(target.replicate(req))
                self.stats.repaired += resp.applied
                repairs.append((rep, resp, target.epoch))
        error = f"{', '.join(moved)}: at another epoch" if moved else None
        return Repaired(w, epochs, repairs, len(differing), BUCKETS, error, self.t)

    def _answerable(self, f: InFlight) -> bool:
        """A long-poll answers only once its feed has news or its wait is over."""
        w = f.work
        if not isinstance(w, Fetch) or w.wait_ms == 0 or not self.up(w.source):
            return True
        if self.t - f.sent_at >= w.wait_ms:
            return True
        return self.stores[w.source].last_version() > w.since

    # ------------------------------------------------------------ driving

    def step(self) -> None:
        self.stats.steps += 1
        f = self.faults
        r = self.rng.random()
        self.t += self.rng.randint(0, 3)
        self.land_late_copies()
        self.expire()
        for proc in self.procs:
            self.ready(proc)
        if r < 0.3:
            self.client_write()
        elif r < 0.38:
            self.session_read()
        elif r < 0.88:
            ready = [x for x in self.inflight if self._answerable(x)]
            if ready:
                self.complete(self.rng.choice(ready))
        elif r < 0.88 + f.crash:
            self.crash(self.rng.choice(self.procs))
        elif r < 0.88 + f.crash + f.partition:
            self.partitioned ^= {self.rng.choice(self.names)}
        elif r < 0.88 + f.crash + f.partition + f.wipe:
            self.wipe(self.rng.choice(self.names))
        elif r < 0.88 + f.crash + f.partition + f.wipe + f.move:
            self.move(self.rng.choice(self.names))

    def _round(self) -> int:
        """Advance the clock and answer every call until only idle long-polls are left; 1 if
        any row, purge or cursor moved."""
        self.t += 5
        self.land_late_copies()
        self.expire()
        before = self._moved()
        for _ in range(10_000):
            for proc in self.procs:
                self.ready(proc)
            ready = [x for x in self.inflight if self._answerable(x)]
            if not ready:
                return int(self._moved() != before)
            self.complete(self.rng.choice(ready))
        raise AssertionError(f"seed {self.seed}: a round never ends")

    def _moved(self) -> tuple[object, ...]:
        return (
            [s.last_version() for s in self.stores.values()],
            self.stats.purged,
            [len(p.loop.engine.candidates) for p in self.procs],
            [p.loop.engine.purges_decided() for p in self.procs],
            [sorted(p.loop.engine.cursors.items()) for p in self.procs],
        )

    def expire(self) -> None:
        """A call not answered within its timeout fails (the sender's deadline: never applied)."""
        for f in list(self.inflight):
            wait = f.work.wait_ms if isinstance(f.work, Fetch) else 0
            if self.t - f.sent_at > CALL_TIMEOUT_MS + wait:
                if f.proc is None:
                    self.inflight.remove(f)
                else:
                    self.complete(f)

    def quiesce(self, max_rounds: int = 400) -> int:
        """Heal everything and run clean sync rounds until nothing moves, anti-entropy included."""
        self.lossy = False
        self.partitioned.clear()
        self.t = max([self.t, *self.down_until.values(), *(w for _, _, w in self.late)]) + 1
        quiet = 0
        for rounds in range(max_rounds):
            moved = self._round()
            quiet = quiet + 1 if moved == 0 else 0
            owed = any(
                p.loop.engine.backlog(self.names) or p.loop.engine.owed_applied for p in self.procs
            )
            if quiet >= LOOP.anti_entropy_every_ms // 5 + 2 and not owed:
                self.crash_point = None  # healed: the rounds after this count what moves
                return rounds
        raise AssertionError(f"seed {self.seed}: no quiescence after {max_rounds} rounds")

    def quiet_rounds(self, rounds: int = 10) -> tuple[int, dict[str, int]]:
        """Run more rounds after quiescence: (rows transferred, last_version per node)."""
        before = {x: s.last_version() for x, s in self.stores.items()}
        sent0 = sum(sum(p.loop.engine.rows_sent.values()) for p in self.procs)
        for _ in range(rounds):
            self._round()
        after = {x: s.last_version() for x, s in self.stores.items()}
        assert after == before, f"seed {self.seed}: last_version moved {before} -> {after}"
        sent = sum(sum(p.loop.engine.rows_sent.values()) for p in self.procs) - sent0
        return sent, after

    # ------------------------------------------------------------ verdict

    def check(self) -> None:
        """Every node identical; every key at least its last safe acknowledged write."""

        def state(s: MemoryStore) -> dict[str, tuple[bool, int, str, bytes]]:
            return {
                r.key: (r.deleted, r.hlc, r.origin, bytes(r.value))
                for r in (s.get(k) for k in KEYS)
                if r is not None
            }

        states = {x: state(s) for x, s in self.stores.items()}
        first = states[self.names[0]]
        for x, st in states.items():
            assert st == first, (
                f"seed {self.seed}: {x} differs from {self.names[0]}:\n{st}\n{first}"
            )
        for key, writes in self.acked.items():
            safe = [w for w in writes if (w.key, w.hlc, w.origin) not in self.vulnerable]
            best = max(safe, key=write_id) if safe else None
            got = first.get(key)
            if got is None:
                # A vulnerable tombstone later than ``best`` may have survived and been purged.
                later_tomb = any(
                    w.deleted and (best is None or write_id(w) > write_id(best)) for w in writes
                )
                assert best is None or best.deleted or later_tomb, (
                    f"seed {self.seed}: {key} lost; last safe write {best}"
                )
                continue
            assert any((w.hlc, w.origin) == got[1:3] for w in writes), (
                f"seed {self.seed}: {key} holds a write nobody acknowledged: {got}"
            )
            if best is not None:
                assert (got[1], got[2]) >= write_id(best), (
                    f"seed {self.seed}: {key} holds {got[:3]}, older than {write_id(best)}"
                    f" (deleted={best.deleted}): resurrected or lost"
                )


def simulate(seed: int, steps: int | None = None, crash_after: str | None = None) -> Sim:
    """One full run: chaos, heal, quiesce, verify; returns the simulation for inspection.
    ``crash_after``: the sync also crashes at that crash point, again and again until healed."""
    rng = random.Random(seed ^ 0x5EED)
    n = rng.randint(2, 5)
    limit = rng.choice([1, 2, 3, 5, 100])
    sim = Sim(seed, n=n, limit=limit, two_syncs=0.3, crash_after=crash_after)
    for _ in range(steps if steps is not None else rng.randint(50, 400)):
        sim.step()
    sim.quiesce()
    sim.check()
    sent, _ = sim.quiet_rounds()
    assert sent == 0, f"seed {seed}: {sent} rows echoed after quiescence"
    return sim


def _node(w: Work) -> str:
    if isinstance(w, Fetch):
        return w.source
    if isinstance(w, Send):
        return w.batch.target
    if isinstance(w, Purge):
        return w.node
    return ""
