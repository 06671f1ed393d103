"""Fault levers on a local cluster: stop, start, restart, pause, resume, wipe, skew, partition.

Rule: a lever acts through supervisord (or on the component's own process and files), waits with
a deadline until the component is in the state it asked for, and prints what it did and the
command that undoes it. A stopped component stays STOPPED and a paused one stays frozen (SIGSTOP:
supervisord still sees it RUNNING and never restarts it) until a lever or `dtm cluster up` brings
it back. `partition` refuses on a cluster whose components share one loopback address: there is
no network between them to cut (see `partition_refusal`).
"""

from __future__ import annotations

import argparse
import ipaddress
import itertools
import os
import re
import signal
import time
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path

from dtm.cluster.health import probe
from dtm.cluster.layout import Component, RunDir, all_components, resolve_alias
from dtm.cluster.supervisor_client import DOWN_STATES, ProcInfo, Supervisor
from dtm.config import ClusterConfig, load_config, parse_config
from dtm.errors import ErrNoDataFound, ErrSyntaxInvalidArgs, ErrTimeout, ErrUnavailable

WAIT_SECS = 30.0
FENCE_WAIT_SECS = 20.0
DB_SUFFIXES = ("", "-wal", "-shm")
_OFFSET = re.compile(r"^([+-]?)(\d+)(ms|s)?$")

Say = Callable[[str], None]


def _say(msg: str) -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------- finding things


def _setup(run: RunDir, python: str, name: str) -> tuple[ClusterConfig, Supervisor, Component]:
    if not run.config.exists():
        raise ErrNoDataFound(f"no cluster in {run.root} (start one with `make up`)")
    cfg = load_config(run.config)
    sup = Supervisor(run, python)
    if not sup.alive():
        raise ErrUnavailable(f"the cluster in {run.root} is not running (start it: `make up`)")
    wanted = resolve_alias(name)
    comps = {c.name: c for c in all_components(cfg)}
    if wanted not in comps:
        raise ErrSyntaxInvalidArgs(f"unknown component {name!r} (have: {', '.join(comps)})")
    return cfg, sup, comps[wanted]


def _info(sup: Supervisor, name: str) -> ProcInfo:
    for p in sup.processes():
        if p.name == name:
            return p
    raise ErrNoDataFound(f"supervisord runs no {name!r} (run `make up`)")


def is_frozen(pid: int) -> bool:
    """True if the process is stopped by a signal (state T in /proc/<pid>/stat)."""
    if pid <= 0:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] == ["T"]


def state_of(info: ProcInfo) -> str:
    """supervisord's state name, with PAUSED for a RUNNING process that is frozen."""
    if info.statename == "RUNNING" and is_frozen(info.pid):
        return "PAUSED"
    return info.statename


def _wait(what: str, pred: Callable[[], bool], timeout: float = WAIT_SECS) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise ErrTimeout(f"{what} did not happen within {timeout:.0f}s")
        time.sleep(0.05)


def _wait_healthy(sup: Supervisor, comp: Component) -> None:
    def ok() -> bool:
        info = _info(sup, comp.name)
        if info.statename in ("FATAL", "EXITED"):
            raise ErrUnavailable(f"{comp.name} did not start: {info.statename} {info.description}")
        return info.statename == "RUNNING" and probe(comp, timeout=0.5)[0]

    _wait(f"{comp.name} answering /healthz", ok)


# ---------------------------------------------------------------- the levers


def stop(run: RunDir, python: str, name: str, say: Say = _say) -> int:
    _, sup, comp = _setup(run, python, name)
    _stop(sup, comp)
    say(
        f"stopped {comp.name}: it stays down (supervisord does not restart it) until "
        f"`dtm cluster start {comp.name}` (or `make start-{comp.name}`, or `make up`)"
    )
    return 0


def _stop(sup: Supervisor, comp: Component) -> None:
    info = _info(sup, comp.name)
    if info.statename in DOWN_STATES:
        return
    frozen = is_frozen(info.pid)
    try:
        sup.call("stopProcess", comp.name, False, timeout=10.0)
    except xmlrpc.client.Fault as fault:
        raise ErrUnavailable(f"supervisord could not stop {comp.name}: {fault}") from None
    if frozen:  # a frozen process holds SIGTERM until it runs again
        os.kill(info.pid, signal.SIGCONT)
    _wait(f"{comp.name} stopping", lambda: _info(sup, comp.name).statename in DOWN_STATES)


def start(run: RunDir, python: str, name: str, say: Say = _say) -> int:
    _, sup, comp = _setup(run, python, name)
    info = _info(sup, comp.name)
    if is_frozen(info.pid):
        raise ErrSyntaxInvalidArgs(
            f"{comp.name} is paused, not stopped: `dtm cluster resume {comp.name}`"
        )
    sup.start(comp.name)
    _wait_healthy(sup, comp)
    say(f"started {comp.name} (pid {_info(sup, comp.name).pid}): healthy at {comp.url}")
    return 0


def restart(run: RunDir, python: str, name: str, say: Say = _say) -> int:
    _, sup, comp = _setup(run, python, name)
    _stop(sup, comp)
    sup.start(comp.name)
    _wait_healthy(sup, comp)
    say(f"restarted {comp.name} (pid {_info(sup, comp.name).pid}): healthy at {comp.url}")
    return 0


def pause(run: RunDir, python: str, name: str, say: Say = _say) -> int:
    _, sup, comp = _setup(run, python, name)
    info = _info(sup, comp.name)
    if info.statename != "RUNNING" or not info.pid:
        raise ErrUnavailable(f"{comp.name} is {info.statename}, not running: nothing to pause")
    os.kill(info.pid, signal.SIGSTOP)
    _wait(f"{comp.name} freezing", lambda: is_frozen(info.pid))
    say(
        f"paused {comp.name} (SIGSTOP to pid {info.pid}): it holds its port and its connections "
        f"but answers nothing, like a stuck machine. Undo: `dtm cluster resume {comp.name}` "
        f"(or `make resume-{comp.name}`)"
    )
    return 0


def resume(run: RunDir, python: str, name: str, say: Say = _say) -> int:
    _, sup, comp = _setup(run, python, name)
    info = _info(sup, comp.name)
    if not is_frozen(info.pid):
        say(f"{comp.name} is not paused ({info.statename}): nothing to do")
        return 0
    os.kill(info.pid, signal.SIGCONT)
    _wait(f"{comp.name} running again", lambda: not is_frozen(info.pid))
    say(f"resumed {comp.name} (SIGCONT to pid {info.pid}): it carries on where it stopped")
    return 0


def thaw_all(sup: Supervisor) -> None:
    """SIGCONT every paused program, so that a shutdown's SIGTERM is acted on at once."""
    for info in sup.processes():
        if is_frozen(info.pid):
            os.kill(info.pid, signal.SIGCONT)


def _epoch(cfg: ClusterConfig, comp: Component) -> str:
    from dtm.cli.cluster_status import fetch_node_status
    from dtm.cluster.access import credential, tls_context

    try:
        st = fetch_node_status(comp.url, 3.0, credential(cfg), tls_context(cfg))
    except (ErrUnavailable, ErrSyntaxInvalidArgs) as err:
        return f"? ({err.name})"
    return f"{st.epoch} at version {st.last_version}, {st.live_rows} rows"


def wipe(run: RunDir, python: str, name: str, say: Say = _say) -> int:
    cfg, sup, comp = _setup(run, python, name)
    if comp.kind != "node":
        raise ErrSyntaxInvalidArgs(f"only a data node can be wiped, not {comp.name}")
    before = _epoch(cfg, comp) if _info(sup, comp.name).statename == "RUNNING" else "?"
    _stop(sup, comp)
    db = cfg.data_dir / f"{comp.name}.db"
    removed = []
    for suffix in DB_SUFFIXES:
        path = db.with_name(db.name + suffix)
        if path.exists():
            path.unlink()
            removed.append(path.name)
    sup.start(comp.name)
    _wait_healthy(sup, comp)
    say(
        f"wiped {comp.name}: deleted {', '.join(removed) or 'nothing (no database yet)'} in "
        f"{cfg.data_dir}; it was epoch {before}, it is now epoch {_epoch(cfg, comp)}. The sync "
        f"sees the new epoch and copies every row from the other nodes into it: watch "
        f"`todo cluster status --watch`. No undo: the other nodes' copies are the backup."
    )
    return 0


# ---------------------------------------------------------------- clock skew


def parse_offset(text: str) -> int:
    """'+2000', '-1500ms', '+3s', '0' -> milliseconds."""
    m = _OFFSET.match(text.strip())
    if m is None:
        raise ErrSyntaxInvalidArgs(f"bad offset {text!r}: use milliseconds like +2000, -1500, 0")
    ms = int(m.group(2)) * (1000 if m.group(3) == "s" else 1)
    return -ms if m.group(1) == "-" else ms


def with_offset(text: str, node: str, offset_ms: int) -> str:
    """The config text with ``clock_offset_ms = offset_ms`` in the [[node]] table of ``node``
    (the line dropped for 0); every other line kept as it was."""
    lines = text.splitlines()
    tables = [i for i, ln in enumerate(lines) if ln.strip().startswith("[")] + [len(lines)]
    for head, end in itertools.pairwise(tables):
        if lines[head].strip() != "[[node]]":
            continue
        body = lines[head + 1 : end]
        if not any(re.fullmatch(rf'\s*name\s*=\s*"{re.escape(node)}"\s*', ln) for ln in body):
            continue
        kept = [ln for ln in body if not re.match(r"\s*clock_offset_ms\s*=", ln)]
        at = next((i for i, ln in enumerate(kept) if re.match(r"\s*name\s*=", ln)), 0) + 1
        if offset_ms:
            kept.insert(at, f"clock_offset_ms = {offset_ms}")
        out = [*lines[: head + 1], *kept, *lines[end:]]
        return "\n".join(out) + "\n"
    raise ErrNoDataFound(f"no [[node]] table named {node!r} in the cluster config")


def skew(run: RunDir, python: str, name: str, offset: str, say: Say = _say) -> int:
    cfg, sup, comp = _setup(run, python, name)
    if comp.kind != "node":
        raise ErrSyntaxInvalidArgs(f"only a data node's clock can be skewed, not {comp.name}")
    ms = parse_offset(offset)
    text = with_offset(run.config.read_text(encoding="utf-8"), comp.name, ms)
    parse_config(text, str(run.root))  # never write a config the components would refuse
    tmp = run.config.with_name(run.config.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, run.config)
    _stop(sup, comp)
    sup.start(comp.name)
    _wait_healthy(sup, comp)
    limit = cfg.node_named(comp.name).max_clock_offset_ms
    beyond = abs(ms) > limit
    seen = _wait_fenced(cfg, comp, beyond)
    fence = (
        f" That is beyond max_clock_offset_ms = {limit}: its peers see the gap, it fences "
        f"itself (refuses client writes, the balancer sends them elsewhere) and the other "
        f"nodes refuse its stamps from the future until the clock is fixed."
        if beyond
        else f" Within max_clock_offset_ms = {limit}: the hybrid clocks keep the order."
    )
    if not seen:
        fence += f" (It did not report {'fenced' if beyond else 'unfenced'} yet: check "
        fence += "`todo cluster status`.)"
    say(
        f"{comp.name}'s clock now runs {ms:+d} ms off the machine's (clock_offset_ms in "
        f"{run.config}; restarted it).{fence} Undo: `dtm cluster skew {comp.name} 0`"
    )
    return 0


def _wait_fenced(cfg: ClusterConfig, comp: Component, fenced: bool) -> bool:
    """Wait until the node's status says ``fenced`` (it measures its peers every second or so)."""
    from dtm.cli.cluster_status import fetch_node_status
    from dtm.cluster.access import credential, tls_context
    from dtm.errors import DtmError

    cred, ctx = credential(cfg), tls_context(cfg)
    deadline = time.monotonic() + FENCE_WAIT_SECS
    while time.monotonic() < deadline:
        try:
            if fetch_node_status(comp.url, 2.0, cred, ctx).fenced == fenced:
                return True
        except DtmError:
            pass
        time.sleep(0.2)
    return False


# ---------------------------------------------------------------- partitions


def partition_refusal(cfg: ClusterConfig, a: str, b: str) -> str | None:
    """Why a partition between components ``a`` and ``b`` cannot be made here, or None."""
    hosts = {name: sec.host for name, sec in cfg.components}
    for n in (a, b):
        if n not in hosts:
            raise ErrSyntaxInvalidArgs(f"unknown component {n!r} (have: {', '.join(hosts)})")
    if a == b:
        raise ErrSyntaxInvalidArgs("a partition needs two different components")
    ha, hb = hosts[a], hosts[b]
    if _is_loopback(ha) and _is_loopback(hb):
        return (
            f"{a} ({ha}) and {b} ({hb}) are processes on this machine talking over loopback: "
            f"there is no network between them to cut, and blocking one's port would cut it "
            f"off from everyone, which is a stop, not a partition. A real partition needs "
            f"separate hosts or network namespaces: tests/e2e/test_netns_partition.py builds "
            f"namespaces joined by a bridge and takes one link down. Here, `dtm cluster pause "
            f"{b}` shows what {a} sees when {b} stops answering."
        )
    return (
        f"{a} ({ha}) and {b} ({hb}) run on separate hosts: cut the link there with your "
        f"firewall (dtm does not change another machine's network)."
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def partition(run: RunDir, a: str, b: str) -> int:
    if not run.config.exists():
        raise ErrNoDataFound(f"no cluster in {run.root} (start one with `make up`)")
    why = partition_refusal(load_config(run.config), resolve_alias(a), resolve_alias(b))
    raise ErrUnavailable(f"cannot partition {a} from {b}: {why}")


def heal(run: RunDir) -> int:
    if not run.config.exists():
        raise ErrNoDataFound(f"no cluster in {run.root} (start one with `make up`)")
    _say("nothing to heal: `dtm cluster partition` makes no fault on a local cluster")
    return 0


def view_url(run: RunDir) -> int:
    """Print the live view's address with the cluster secret in its fragment (never sent to a
    server: the page reads it, logs in and drops it from the address bar)."""
    if not run.config.exists():
        raise ErrNoDataFound(f"no cluster in {run.root} (start one with `make up`)")
    cfg = load_config(run.config)
    if cfg.view is None:
        raise ErrNoDataFound(
            f"{run.config} has no [view] section, so the live view does not run: add "
            f'[view] with host = "127.0.0.1" and port = 7430 to it, then `make up`'
        )
    from dtm.cluster.access import credential

    cred = credential(cfg)
    fragment = f"#k={cred.secrets[0]}" if cred is not None else ""
    _say(f"{cfg.view.url}/{fragment}")
    return 0


# ---------------------------------------------------------------- the command line

ONE_COMPONENT = {
    "stop": "stop a component; it stays down until `start`",
    "start": "start a stopped component and wait until it is healthy",
    "restart": "stop and start a component",
    "pause": "freeze a component (SIGSTOP), like a stuck machine, until `resume`",
    "resume": "unfreeze a paused component (SIGCONT)",
    "wipe": "stop a data node, delete its data, start it: a new epoch, refilled by the sync",
}


def run(run_dir: RunDir, python: str, args: argparse.Namespace) -> int:
    """Carry out the lever ``args.command`` parsed by dtm.cluster.main."""
    cmd = args.command
    one: dict[str, Callable[[RunDir, str, str], int]] = {
        "stop": stop,
        "start": start,
        "restart": restart,
        "pause": pause,
        "resume": resume,
        "wipe": wipe,
    }
    if cmd in one:
        return one[cmd](run_dir, python, args.component)
    if cmd == "skew":
        return skew(run_dir, python, args.component, args.offset)
    if cmd == "partition":
        return partition(run_dir, args.a, args.b)
    if cmd == "heal":
        return heal(run_dir)
    if cmd == "view":
        return view_url(run_dir)
    raise ErrSyntaxInvalidArgs(f"unknown command {cmd!r}")
