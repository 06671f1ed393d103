"""A deterministic simulation of the sync process over N in-memory data nodes.

One seed fixes everything: a manual clock (with a fixed skew per node, so two nodes may be up to
twice the max offset apart: stamps are refused and rows held back), random client writes,
deletes and re-creates on every node, a network that drops, duplicates and reorders deliveries,
partitions between the sync process and nodes, sync crashes between any two steps (keeping only
its persisted state), and epoch resets (a node wiped to a new empty store). The sync side is the
very `SyncEngine` the service runs; this file only plays the shell's part of performing its work.

After healing, `quiesce` runs sync rounds until nothing moves, and `check` compares every node
with the last-writer-wins oracle of the acknowledged writes.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from dtm.core.order import write_id
from dtm.core.repair import differing_buckets, plan_repairs
from dtm.core.syncplan import Batch
from dtm.core.syncstate import SyncEngine
from dtm.errors import ErrNoDataFound, ErrSyntaxInvalidArgs
from dtm.storage.memory import MemoryStore
from dtm.wire import (
    BucketRows,
    ChangesPage,
    Digest,
    ReplicateRequest,
    Row,
    SyncStateFile,
    decode,
    encode,
)

T = TypeVar("T")

KEYS = [f"k{i}" for i in range(8)]
MAX_SKEW_MS = 20
CALL_TIMEOUT_MS = 10  # a batch not delivered this long after its rows were read is dropped
BUCKETS = 8


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
    persist: float = 0.7  # chance the cursor file is written right after an ack


@dataclass
class Stats:
    steps: int = 0
    crashes: int = 0
    wipes: int = 0
    purged: int = 0
    repaired: int = 0
    conflicts: int = 0
    refused: int = 0  # client writes whose seen stamp was beyond the node's max offset
    held: int = 0  # deliveries in which the target held rows back (too far ahead of its clock)


@dataclass
class SyncProc:
    disk: bytes | None
    engine: SyncEngine
    pending: list[Batch]
    read_at: dict[int, int] = field(default_factory=dict)  # id(batch) -> when its rows were read


@dataclass
class Sim:
    seed: int
    n: int
    limit: int
    faults: Faults = field(default_factory=Faults)
    two_syncs: float = 0.0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.t = 1_000_000
        self.names = [f"n{i}" for i in range(1, self.n + 1)]
        self.skew = {x: self.rng.randint(-MAX_SKEW_MS, MAX_SKEW_MS) for x in self.names}
        self.gen = dict.fromkeys(self.names, 0)
        self.stores = {x: self._new_store(x) for x in self.names}
        self.down_until = dict.fromkeys(self.names, 0)  # a wiped node restarting
        self.partitioned: set[str] = set()
        self.acked: dict[str, list[Row]] = {k: [] for k in KEYS}
        self.vulnerable: set[tuple[str, int, str]] = set()
        self.max_hlc = 0
        self.stats = Stats()
        # One or two sync processes at once, each with its own state file and batches in flight.
        self.procs = [
            SyncProc(
                None, SyncEngine(self.names, recent=64, purge_fence_ms=CALL_TIMEOUT_MS + 1), []
            )
        ]
        if self.rng.random() < self.two_syncs:
            self.procs.append(
                SyncProc(
                    None, SyncEngine(self.names, recent=64, purge_fence_ms=CALL_TIMEOUT_MS + 1), []
                )
            )
        self.cur = self.procs[0]
        self.lossy = True

    @property
    def engine(self) -> SyncEngine:
        return self.cur.engine

    @property
    def pending(self) -> list[Batch]:
        return self.cur.pending

    # ------------------------------------------------------------ world

    def _new_store(self, x: str) -> MemoryStore:
        # An epoch as a node makes one: 16 hex characters (here derived, for replays).
        epoch = hashlib.blake2b(f"{x}-e{self.gen[x]}".encode(), digest_size=8).hexdigest()
        return MemoryStore(x, epoch, lambda: self.t + self.skew[x], MAX_SKEW_MS)

    def _boot(self) -> SyncEngine:
        eng = SyncEngine(self.names, recent=64, purge_fence_ms=CALL_TIMEOUT_MS + 1)
        if self.cur.disk is not None:
            eng.restore(decode(self.cur.disk, SyncStateFile))
        return eng

    def reachable(self) -> list[str]:
        return [x for x in self.names if x not in self.partitioned and self.down_until[x] <= self.t]

    def client_write(self) -> None:
        x = self.rng.choice(self.names)
        if self.down_until[x] > self.t:
            return
        key = self.rng.choice(KEYS)
        seen = self.max_hlc if self.rng.random() < 0.5 else 0
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
        self.acked[key].append(row)
        self.max_hlc = max(self.max_hlc, row.hlc)

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
        self.gen[x] += 1
        self.stores[x] = self._new_store(x)
        self.down_until[x] = self.t + 2 * MAX_SKEW_MS + 2
        self.stats.wipes += 1

    # ------------------------------------------------------------ the shell's part

    def crash(self) -> None:
        """The sync process dies: in-memory state and in-flight batches are gone."""
        self.cur.engine = self._boot()
        self.cur.pending = []
        self.cur.read_at.clear()
        self.stats.crashes += 1

    def persist(self) -> None:
        if self.engine.dirty:
            self.cur.disk = encode(self.engine.snapshot())

    def _page(self, store: MemoryStore, since: int) -> ChangesPage:
        """What `GET /v1/changes` answers: last_version read before the rows."""
        top = store.last_version()
        rows = store.changes(since, self.limit)
        return ChangesPage(store.node, store.epoch, max([top, *(r.version for r in rows)]), rows)

    def fetch(self, source: str) -> None:
        reach = self.reachable()
        if source not in reach:
            return
        since = self.engine.plan_fetch(source, reach)
        if since is None:
            return
        page = self._page(self.stores[source], since)
        out = self.engine.on_page(source, since, self.limit, page, reach, self.t)
        self.stats.conflicts += len(out.conflicts)
        busy = {(b.source, b.target) for b in self.pending}
        fresh = [b for b in out.batches if (b.source, b.target) not in busy]
        self.pending.extend(fresh)
        self.cur.read_at.update({id(b): self.t for b in fresh})

    def deliver_one(self) -> int:
        """Send one pending batch (random choice: reordering). Returns rows the target applied."""
        if not self.pending:
            return 0
        b = self.pending.pop(self.rng.randrange(len(self.pending)))
        read_at = self.cur.read_at.pop(id(b))
        if b.target not in self.reachable() or self.t - read_at > CALL_TIMEOUT_MS:
            return 0  # unreachable, or the call timed out: never applied
        if self.lossy and self.rng.random() < self.faults.drop_request:
            return 0
        target = self.stores[b.target]
        seen = self.engine.observed.get(b.target)
        if b.rows and seen is not None and self.rng.random() < 0.5:
            # The shell's look before writing: read the target's newest changes first.
            self.stats.conflicts += len(
                self.engine.observe(b.target, self._page(target, seen), seen, self.limit, self.t)
            )
        req: ReplicateRequest = b.request()
        resp = run(target.replicate(req))
        self.stats.held += resp.held_from != 0
        applied = resp.applied
        if self.lossy and self.rng.random() < self.faults.duplicate:
            resp = run(target.replicate(req))
            applied += resp.applied
        if self.lossy and self.rng.random() < self.faults.drop_response:
            return applied
        self.stats.conflicts += len(self.engine.on_ack(b, resp, self.t))
        if not self.lossy or self.rng.random() < self.faults.persist:
            self.persist()
        return applied

    def purge(self) -> int:
        reach = self.reachable()
        done = 0
        for x, rids in self.engine.purge_plan(reach, self.t).items():
            if self.lossy and self.rng.random() < self.faults.drop_request:
                continue
            n = run(self.stores[x].purge(rids))
            done += n
            if self.lossy and self.rng.random() < self.faults.drop_response:
                continue
            self.engine.on_purged(x, rids, n)
        self.stats.purged += done
        return done

    def anti_entropy(self) -> int:
        reach = self.reachable()
        if len(reach) < 2:
            return 0
        digests = {}
        for x in reach:
            s = self.stores[x]
            self.engine.learn_epoch(x, s.epoch, s.last_version())
            digests[x] = Digest(x, s.epoch, s.last_version(), s.digest(BUCKETS))
        repaired = 0
        for bucket in differing_buckets(digests):
            rows = {
                x: BucketRows(x, self.stores[x].epoch, self.stores[x].bucket_rows(bucket, BUCKETS))
                for x in reach
            }
            for rep in plan_repairs(rows, self.engine.repair_skip()):
                target = self.stores[rep.target]
                resp = run(
                    target.replicate(
                        ReplicateRequest(rep.holder, rep.holder_epoch, 0, list(rep.rows))
                    )
                )
                repaired += resp.applied
                self.engine.on_repaired(rep, resp, target.epoch)
        self.stats.repaired += repaired
        return repaired

    # ------------------------------------------------------------ driving

    def step(self) -> None:
        self.stats.steps += 1
        self.cur = self.rng.choice(self.procs)
        f = self.faults
        r = self.rng.random()
        self.t += self.rng.randint(0, 3)
        if r < 0.35:
            self.client_write()
        elif r < 0.55:
            self.fetch(self.rng.choice(self.names))
        elif r < 0.85:
            self.deliver_one()
        elif r < 0.9:
            self.purge()
        elif r < 0.91:
            self.anti_entropy()
        elif r < 0.91 + f.crash:
            self.crash()
        elif r < 0.91 + f.crash + f.partition:
            x = self.rng.choice(self.names)
            self.partitioned ^= {x}
        elif r < 0.91 + f.crash + f.partition + f.wipe:
            self.wipe(self.rng.choice(self.names))
        else:
            self.persist()

    def quiesce(self, max_rounds: int = 400) -> int:
        """Heal everything and run clean sync rounds until a round moves nothing."""
        self.lossy = False
        self.partitioned.clear()
        self.t = max([self.t, *self.down_until.values()]) + 1
        for rounds in range(max_rounds):
            self.t += 5
            moved = 0
            for proc in self.procs:
                self.cur = proc
                for x in self.names:
                    self.fetch(x)
                moved += sum(len(b.rows) for b in self.pending) + len(self.pending)
                while self.pending:
                    moved += self.deliver_one()
                moved += self.purge() + self.engine.purges_decided()
            if moved == 0 and rounds % 4 == 3:
                for proc in self.procs:
                    self.cur = proc
                    moved += self.anti_entropy()
                if moved == 0:
                    return rounds
        raise AssertionError(f"seed {self.seed}: no quiescence after {max_rounds} rounds")

    def quiet_rounds(self, rounds: int = 10) -> tuple[int, dict[str, int]]:
        """Run more rounds after quiescence: (rows transferred, last_version per node)."""
        before = {x: s.last_version() for x, s in self.stores.items()}
        sent = 0
        for _ in range(rounds):
            self.t += 5
            for proc in self.procs:
                self.cur = proc
                for x in self.names:
                    self.fetch(x)
                sent += sum(len(b.rows) for b in self.pending)
                while self.pending:
                    self.deliver_one()
        after = {x: s.last_version() for x, s in self.stores.items()}
        assert after == before, f"seed {self.seed}: last_version moved {before} -> {after}"
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


def simulate(seed: int, steps: int | None = None) -> Sim:
    """One full run: chaos, heal, quiesce, verify; returns the simulation for inspection."""
    rng = random.Random(seed ^ 0x5EED)
    sim = Sim(seed, n=rng.randint(2, 5), limit=rng.choice([1, 2, 3, 5, 100]), two_syncs=0.3)
    for _ in range(steps if steps is not None else rng.randint(50, 400)):
        sim.step()
    sim.quiesce()
    sim.check()
    sent, _ = sim.quiet_rounds()
    assert sent == 0, f"seed {seed}: {sent} rows echoed after quiescence"
    return sim
