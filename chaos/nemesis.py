"""Nemeses: a seeded plan of faults (pure), and the executor that applies and heals them.

Rule: the plan is a function of (seed, duration, nodes, kinds) alone, so a seed names the same
faults at the same offsets every time; each step applies one to three faults at once on
distinct components, holds them, heals them all, and leaves a quiet gap.

    kill T        SIGKILL component T: a data node stays down until the fault heals; the
                  balancer, handler or sync is started again at once, as supervisord does
    pause T       SIGSTOP T; SIGCONT when it heals
    isolate H     host H cut off from every other host (isolate sync, isolate balancer ...)
    split A|B     hosts A and B cut from each other only
    one-way A>B   packets from A to B dropped, B to A delivered
    loss H        P % of H's packets dropped each way at random
    latency H     H's packets delayed by P ms (tc netem; without sch_netem, an NFQUEUE rule
                  and a userspace delayer, chaos.delay)
    skew N        node N restarted with its clock P ms off; restarted at 0 when it heals
    wipe N        node N SIGKILLed, its database deleted, restarted at once (a new epoch): a
                  disk lost with whatever writes the sync had not copied yet
    wipe-synced   the same, once every other node has applied N's writes (N cut from the
                  balancer meanwhile; not done if they lack them after 30 s): a lost disk whose
                  data survives elsewhere
    sync-crash    the sync SIGKILLed and restarted again and again, at random points of its work
    sync-crash-at the sync restarted with a crash point armed (`dtm.core.crashpoint`: after a
                  page fetched, a batch applied before its cursor moved, a purge, a repair,
                  a cursor save; the step seeded, the count 1 to 3): it kills itself there,
                  and is restarted armed again until the fault heals, then restarted clean
"""

from __future__ import annotations

import random
import signal
import time
from dataclasses import dataclass

from chaos.cluster import BALANCERS, HANDLERS, SECOND, SERVICES, Cluster
from chaos.history import Window
from chaos.net import Hosts
from dtm.core import crashpoint

KINDS = (
    "kill",
    "pause",
    "isolate",
    "split",
    "one-way",
    "loss",
    "latency",
    "skew",
    "wipe",
    "wipe-synced",
    "sync-crash",
    "sync-crash-at",
)
SYNC_KINDS = ("sync-crash", "sync-crash-at")  # both restart the sync again and again
WARMUP_S = 5.0
COOLDOWN_S = 5.0
SYNCED_WAIT_S = 30.0  # how long wipe-synced waits for the others to hold the node's writes
SHORT_S = 75.0  # the short mode's workload: its fixed mix ends 6 s before


@dataclass(frozen=True)
class Fault:
    id: int
    kind: str
    targets: tuple[str, ...]
    param: int
    at: float  # seconds after the workload starts
    hold: float

    @property
    def target(self) -> str:
        sep = {"split": "|", "one-way": ">"}.get(self.kind, ",")
        t = sep.join(self.targets)
        if self.kind == "sync-crash-at":
            return f"{t} after {crashpoint.STEPS[self.param]}"
        return f"{t} {self.param:+d}ms" if self.kind == "skew" else t

    @property
    def label(self) -> str:
        """The kind and the class of its targets: "kill node", "split balancer|node"."""
        cls = [("node" if t.startswith("store") else SECOND.get(t, t)) for t in self.targets]
        if self.kind == "split":  # a split has no direction
            cls.sort()
        sep = {"split": "|", "one-way": ">"}.get(self.kind, ",")
        if self.kind == "skew":
            return "skew node (beyond max offset)" if abs(self.param) > 500 else "skew node (small)"
        if self.kind in ("wipe", "wipe-synced", *SYNC_KINDS):
            return self.kind
        return f"{self.kind} {sep.join(cls)}"


def _targets(kind: str, rng: random.Random, nodes: list[str], busy: set[str]) -> tuple[str, ...]:
    hosts = [*nodes, *SERVICES]
    free = [h for h in hosts if h not in busy]
    if kind in ("skew", "wipe", "wipe-synced"):
        free = [n for n in nodes if n not in busy]
    if kind in SYNC_KINDS:
        free = [] if "sync" in busy else ["sync"]
    if kind in ("split", "one-way"):
        pool = [h for h in free if h not in HANDLERS]
        if len(pool) < 2:
            return ()
        a, b = rng.sample(pool, 2)
        return (a, b)
    if kind in ("isolate", "loss", "latency"):
        free = [h for h in free if h not in HANDLERS]  # the clients' way in: kill/pause them
    return (rng.choice(free),) if free else ()


def _param(kind: str, rng: random.Random) -> int:
    if kind == "loss":
        return rng.choice((10, 25, 40))
    if kind == "latency":
        return rng.choice((50, 200, 700))
    if kind == "skew":
        return rng.choice((-1, 1)) * rng.choice((300, 5000, 30000))
    if kind == "sync-crash-at":
        return rng.randrange(len(crashpoint.STEPS))
    return 0


def plan(seed: int, seconds: float, nodes: list[str], kinds: tuple[str, ...]) -> list[Fault]:
    """The faults of a run, from its seed alone."""
    rng = random.Random(seed)
    faults: list[Fault] = []
    t = WARMUP_S
    while t < seconds - COOLDOWN_S - 3:
        hold = round(rng.uniform(3.0, 12.0), 1)
        hold = min(hold, seconds - COOLDOWN_S - t)
        busy: set[str] = set()
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            kind = rng.choice(kinds)
            targets = _targets(kind, rng, nodes, busy)
            if not targets:
                continue
            busy |= set(targets)
            if kind.startswith("wipe"):  # a wiped node refilling under live sessions counts
                busy |= {"sync"}
            faults.append(Fault(len(faults), kind, targets, _param(kind, rng), round(t, 1), hold))
        t += hold + round(rng.uniform(2.0, 6.0), 1)
    return faults


def short_plan(nodes: list[str]) -> list[Fault]:
    """The fixed mix of the short mode: one of each family, and two at once (69 s)."""
    n1, n2 = nodes[0], nodes[1 % len(nodes)]
    steps: list[list[tuple[str, tuple[str, ...], int]]] = [
        [("kill", (n1,), 0), ("kill", ("handler",), 0)],
        [("pause", (n2,), 0)],
        [("isolate", ("sync",), 0)],
        [("split", ("balancer", n1), 0)],
        [("skew", (n2,), 30000), ("sync-crash-at", ("sync",), crashpoint.STEPS.index("applied"))],
        [("kill", ("balancer",), 0), ("one-way", (n1, n2), 0)],
        [("sync-crash", ("sync",), 0), ("loss", (n2,), 25)],
        [("wipe-synced", (nodes[-1],), 0)],
    ]
    faults: list[Fault] = []
    t = WARMUP_S
    for step in steps:
        for kind, targets, param in step:
            faults.append(Fault(len(faults), kind, targets, param, t, 5.0))
        t += 5.0 + 3.0
    return faults


class Executor:
    """Applies a plan's faults at their times and heals them; records each as a Window."""

    def __init__(self, cluster: Cluster, hosts: Hosts, seed: int, netem: str | None) -> None:
        self.cluster, self.hosts = cluster, hosts
        self.rng = random.Random(seed ^ 0x5EED)
        self.netem_missing = netem
        self.windows: list[Window] = []
        self.skipped: list[str] = []
        self._active: dict[int, tuple[Fault, float]] = {}
        self._next_crash = 0.0
        self.crash_points = 0  # sync starts with a crash point armed

    def run(self, faults: list[Fault], t0: float, until: float) -> None:
        """Drive ``faults`` (offsets from ``t0``) until monotonic time ``until``."""
        pending = sorted(faults, key=lambda f: f.at)
        while time.monotonic() < until:
            now = time.monotonic()
            while pending and t0 + pending[0].at <= now:
                self.apply(pending.pop(0))
            for fid, (f, start) in list(self._active.items()):
                if now >= start + f.hold:
                    self.heal(fid)
                elif f.kind == "sync-crash" and now >= self._next_crash:
                    self._crash_sync()
                elif f.kind == "sync-crash-at" and not self.cluster.procs["sync"].alive():
                    self._arm_sync(f)  # it died at its crash point: again, armed anew
            time.sleep(0.05)
        self.heal_all()

    def apply(self, f: Fault) -> None:
        c, h, sid = self.cluster, self.hosts, str(f.id)
        if f.kind == "latency" and self.netem_missing:
            self.skipped.append(f"latency {f.target}: {self.netem_missing}")
            return
        if f.kind == "kill":
            c.kill(f.targets[0])
            if f.targets[0] in SERVICES:  # restarted at once, as supervisord would
                c.start(f.targets[0])
        elif f.kind == "pause":
            c.procs[f.targets[0]].signal(signal.SIGSTOP)
        elif f.kind == "isolate":
            h.isolate(sid, f.targets[0])
        elif f.kind == "split":
            h.split(sid, *f.targets)
        elif f.kind == "one-way":
            h.one_way(sid, *f.targets)
        elif f.kind == "loss":
            h.loss(sid, f.targets[0], f.param)
        elif f.kind == "latency":
            h.delay(sid, f.targets[0], f.param, f.param // 4)
        elif f.kind == "skew":
            c.set_offset(f.targets[0], f.param, wait=False)
        elif f.kind in ("wipe", "wipe-synced"):
            if f.kind == "wipe-synced":  # no client write reaches it; the sync still does
                for b in BALANCERS:
                    self.hosts.split(f"{sid}w{b}", b, f.targets[0])
                done = c.replicated(f.targets[0], SYNCED_WAIT_S)
                for b in BALANCERS:
                    self.hosts.heal(f"{sid}w{b}")
                if not done:
                    self.skipped.append(
                        f"wipe-synced {f.target}: not done, the others lacked its writes after "
                        f"{SYNCED_WAIT_S:g} s"
                    )
                    return
            c.wipe(f.targets[0])
            c.start(f.targets[0])
        elif f.kind == "sync-crash":
            self._next_crash = time.monotonic() + self.rng.uniform(0.1, 1.5)
        elif f.kind == "sync-crash-at":
            self._arm_sync(f)
        self._active[f.id] = (f, time.monotonic())

    def _arm_sync(self, f: Fault) -> None:
        """The sync (SIGKILLed if alive) started with a crash point: f's step, a seeded count."""
        self.crash_points += 1
        point = f"{crashpoint.STEPS[f.param]}:{self.rng.randint(1, 3)}"
        self.cluster.kill("sync")
        self.cluster.start("sync", env={crashpoint.ENV: point})

    def _crash_sync(self) -> None:
        self.cluster.kill("sync")
        self.cluster.start("sync")
        # the next crash lands somewhere in its first rounds after start-up (about 0.7 s)
        self._next_crash = time.monotonic() + 0.7 + self.rng.uniform(0.0, 1.5)

    def heal(self, fid: int) -> None:
        f, start = self._active.pop(fid)
        c = self.cluster
        if f.kind == "kill":
            if not c.procs[f.targets[0]].alive():
                c.start(f.targets[0])
        elif f.kind == "pause":
            c.procs[f.targets[0]].signal(signal.SIGCONT)
        elif f.kind == "skew":
            c.set_offset(f.targets[0], 0, wait=False)
        elif f.kind == "sync-crash-at":  # disarmed: a clean sync
            c.kill("sync")
            c.start("sync")
        elif f.kind not in ("wipe", "wipe-synced", "sync-crash"):
            self.hosts.heal(str(f.id))
        self.windows.append(Window(f.label, f.target, start, time.monotonic()))

    def heal_all(self) -> None:
        for fid in list(self._active):
            self.heal(fid)
        self.hosts.heal_all()
