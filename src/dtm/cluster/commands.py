"""The local cluster's commands: up, down, rm, status, logs.

Rule: `up` converges on "every selected component RUNNING under supervisord and answering
/healthz" from any starting point (nothing, all, a killed component, a killed supervisord) and
starts only what is missing; the cluster file remembers the number of nodes and the ports, and
`up` rewrites it only when it is exactly as `up` wrote it; a port another program holds is an
error before anything starts; `down` keeps data; `rm` keeps nothing.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from dtm.auth import ensure_secret_file
from dtm.cluster import logtail
from dtm.cluster.health import probe
from dtm.cluster.layout import Component, RunDir, all_components, resolve_alias, select
from dtm.cluster.levers import state_of, thaw_all
from dtm.cluster.supervisor_client import DOWN_STATES, ProcInfo, Supervisor
from dtm.cluster.supervisor_conf import render
from dtm.config import ClusterConfig, default_config_text, load_config
from dtm.errors import ErrNoDataFound, ErrSyntaxInvalidArgs, ErrUnavailable

DEFAULT_NODES = 2
# How often a program that is down (FATAL, EXITED ...) is asked to start again while waiting.
RESTART_EVERY = 2.0
LOG_LINES_ON_FAILURE = 30


WRITTEN = ".cluster.toml.sha256"  # in the run folder: the cluster file as `up` last wrote it


@dataclass(frozen=True)
class UpOptions:
    nodes: int | None
    components: list[str] | None
    timeout: float
    base_port: int | None = None


def _say(msg: str) -> None:
    print(msg, flush=True)


def _write_atomic(path: os.PathLike[str], text: str) -> bool:
    """Write ``text`` to ``path`` unless it already holds it; True if the file changed."""
    target = os.fspath(path)
    try:
        with open(target, encoding="utf-8") as f:
            if f.read() == text:
                return False
    except OSError:
        pass
    tmp = f"{target}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    return True


SECRET_LINE = 'secret_file = "secret"'


def _with_secret_file(text: str) -> str:
    """A config text with ``secret_file = "secret"`` added to its [cluster] table."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "[cluster]":
            return "\n".join([*lines[: i + 1], SECRET_LINE, *lines[i + 1 :]]) + "\n"
    return f"[cluster]\n{SECRET_LINE}\n\n{text}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _write_config(run: RunDir, text: str) -> None:
    _write_atomic(run.config, text)
    _write_atomic(run.root / WRITTEN, _digest(text) + "\n")


def _edited(run: RunDir, cfg: ClusterConfig) -> bool:
    """Is the cluster file other than `up` wrote it (or than the default layout)?"""
    text = run.config.read_text(encoding="utf-8")
    try:
        if (run.root / WRITTEN).read_text(encoding="utf-8").strip() == _digest(text):
            return False
    except OSError:
        pass
    return text != default_config_text(len(cfg.node), base=cfg.handler.port)


def _ensure_config(
    run: RunDir, nodes: int | None, running: bool, base: int | None = None
) -> ClusterConfig:
    if run.config.exists():
        cfg = load_config(run.config)
        if not cfg.cluster.secret_file:
            _write_atomic(run.config, _with_secret_file(run.config.read_text(encoding="utf-8")))
            _say(f"{run.config} named no cluster secret: added {SECRET_LINE}")
            cfg = load_config(run.config)
        if base is not None and base != cfg.handler.port:
            raise ErrSyntaxInvalidArgs(
                f"{run.config} has the handler on port {cfg.handler.port}: --base-port applies "
                "only when the cluster file is made (edit the file, or `make rm` first)"
            )
        if nodes is None or nodes == len(cfg.node):
            return cfg
        have = len(cfg.node)
        if running:
            raise ErrSyntaxInvalidArgs(
                f"{run.config} describes {have} node(s) but {nodes} were asked for, and the "
                f"cluster is running: stop it first (`make down`, data is kept), then "
                f"`make up NODES={nodes}`"
            )
        if _edited(run, cfg):
            raise ErrSyntaxInvalidArgs(
                f"{run.config} was edited, so it is not rewritten for {nodes} node(s): add or "
                f"remove its [[node]] sections by hand, or move it away (mv {run.config} "
                f"{run.config}.bak) and run `make up NODES={nodes}` again"
            )
        base = cfg.handler.port
        _say(f"NODES changed from {have} to {nodes}: rewriting {run.config}")
        for i in range(nodes + 1, have + 1):
            _say(f"store{i} is no longer part of the cluster; its data stays in {run.data}")
    _write_config(run, default_config_text(nodes or DEFAULT_NODES, base=base or 7400))
    return load_config(run.config)


def _port_of(url: str) -> tuple[str, int]:
    rest = url.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = rest.rpartition(":")
    return host.strip("[]"), int(port)


def check_ports(run: RunDir, comps: list[Component], states: dict[str, ProcInfo]) -> None:
    """Every port a component that is not running will listen on is free, or ErrUnavailable
    naming the first taken one."""
    for comp in comps:
        info = states.get(comp.name)
        if info is not None and info.statename in ("RUNNING", "STARTING"):
            continue
        host, port = _port_of(comp.url)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    continue  # e.g. an address of another host: the component will say
                raise ErrUnavailable(
                    f"port {port} is in use: {comp.name} is to listen on {comp.url}; stop what "
                    f"holds it (`ss -ltnp 'sport = :{port}'` shows it) or change {comp.name}'s "
                    f"port in {run.config}"
                ) from None


def _states(sup: Supervisor) -> dict[str, ProcInfo]:
    return {p.name: p for p in sup.processes()}


def _make_private(run: RunDir, cfg: ClusterConfig) -> None:
    """The run folder, data and logs 0700; the secret and every file in data/ and logs/ 0600."""
    for d in (run.root, run.data, run.logs, cfg.data_dir, cfg.log_dir):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(d, 0o700)
    for d in {run.data, run.logs, cfg.data_dir, cfg.log_dir}:
        for entry in d.iterdir():
            if entry.is_file() and not entry.is_symlink():
                os.chmod(entry, 0o600)
    files: list[Path | None] = [run.config, cfg.secret_path]
    for f in files:
        if f is not None and f.exists():
            os.chmod(f, 0o600)


def up(run: RunDir, python: str, opts: UpOptions) -> int:
    run.check_socket_path()
    os.umask(0o077)
    for d in (run.root, run.data, run.logs):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    sup = Supervisor(run, python)
    running = sup.alive()
    cfg = _ensure_config(run, opts.nodes, running, opts.base_port)
    secret = cfg.secret_path
    if secret is not None and ensure_secret_file(secret):
        _say(f"made a new cluster secret in {secret} (mode 0600)")
    from dtm.user.local import ensure_local_user

    _say(f"user 'local': token in {ensure_local_user(cfg, run.root, os.environ)}")
    _make_private(run, cfg)
    comps = select(cfg, opts.components)
    check_ports(run, comps, _states(sup) if running else {})
    _write_atomic(run.supervisor_conf, render(run, python, comps))
    if not running:
        sup.clean_stale()
        sup.start_daemon()
        _say(f"started supervisord ({run.supervisor_conf})")
    else:
        added, changed, removed = sup.update()
        for verb, names in (("added", added), ("reconfigured", changed), ("removed", removed)):
            if names:
                _say(f"{verb}: {', '.join(sorted(names))}")
    states = _states(sup)
    for comp in comps:
        info = states.get(comp.name)
        if info is None or info.statename in DOWN_STATES:
            _say(f"starting {comp.name}")
            sup.start(comp.name)
    _wait_healthy(run, sup, comps, opts.timeout)
    _print_table(run, sup, comps)
    _say(
        f"todo is {os.path.join(os.path.dirname(python), 'todo')}: `make exec` opens its shell; "
        "for a bare `todo`, run `. .venv/bin/activate` (or put .venv/bin on your PATH)"
    )
    return 0


def url(run: RunDir, component: str) -> int:
    """Print the address of ``component`` from the cluster file (for make and scripts)."""
    if not run.config.exists():
        raise ErrNoDataFound(f"no cluster in {run.root} (start one with `make up`)")
    cfg = load_config(run.config)
    name = resolve_alias(component)
    for comp in all_components(cfg):
        if comp.name == name:
            _say(comp.url)
            return 0
    sections = {"handler": cfg.handler.url, "balancer": cfg.balancer.url, "sync": cfg.sync.url}
    if name in sections:
        _say(sections[name])
        return 0
    raise ErrNoDataFound(f"no component {component!r} in {run.config}")


def _wait_healthy(run: RunDir, sup: Supervisor, comps: list[Component], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_start: dict[str, float] = {}
    pending = {c.name: c for c in comps}
    reasons: dict[str, str] = {}
    while pending:
        states = _states(sup)
        for name, comp in list(pending.items()):
            info = states.get(name)
            state = info.statename if info is not None else "MISSING"
            if state in DOWN_STATES:
                now = time.monotonic()
                if now - last_start.get(name, 0.0) >= RESTART_EVERY:
                    last_start[name] = now
                    sup.start(name)
                reasons[name] = f"{state}: {info.description if info else ''}".strip()
                continue
            if state != "RUNNING":
                reasons[name] = state
                continue
            ok, why = probe(comp)
            if ok:
                del pending[name]
            else:
                reasons[name] = why
        if not pending:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for name in sorted(pending):
        print(
            f"{name} is not healthy after {timeout:.0f}s: {reasons.get(name, '?')}", file=sys.stderr
        )
        print(f"--- last lines of {run.log_of(name)} ---", file=sys.stderr)
        print(logtail.tail(run.log_of(name), LOG_LINES_ON_FAILURE), file=sys.stderr)
    raise ErrUnavailable(f"not healthy in time: {', '.join(sorted(pending))}")


def _print_table(run: RunDir, sup: Supervisor | None, comps: list[Component]) -> bool:
    """Print one line per component; True if every one is RUNNING and healthy."""
    states = _states(sup) if sup is not None else {}
    all_ok = bool(comps)
    _say(f"{'COMPONENT':<10} {'STATE':<9} {'PID':>7}  {'URL':<24} HEALTH")
    for comp in comps:
        info = states.get(comp.name)
        state = state_of(info) if info is not None else "DOWN"  # PAUSED: frozen by a lever
        pid = str(info.pid) if info is not None and info.pid else "-"
        ok, why = probe(comp, timeout=0.5) if state == "RUNNING" else (False, "-")
        all_ok = all_ok and ok
        _say(f"{comp.name:<10} {state:<9} {pid:>7}  {comp.url:<24} {why}")
    return all_ok


def _stop(run: RunDir, python: str) -> str:
    """Stop every program and supervisord; say what was done."""
    sup = Supervisor(run, python)
    if not sup.alive():
        had_leftovers = sup.pid() is not None
        sup.clean_stale()
        return "killed a supervisord that did not answer" if had_leftovers else "not running"
    thaw_all(sup)  # a paused program would hold SIGTERM until SIGKILL
    sup.shutdown()
    return "stopped"


def down(run: RunDir, python: str) -> int:
    what = _stop(run, python)
    _say(f"{what} (data kept in {run.data})" if what == "stopped" else what)
    return 0


def rm(run: RunDir, python: str) -> int:
    _say(_stop(run, python))
    for d in (run.data, run.logs):
        shutil.rmtree(d, ignore_errors=True)
    users_files = (run.root / "users.json", run.root / "users.json.lock", run.root / "local.token")
    written = run.root / WRITTEN
    for f in (
        run.config,
        written,
        run.secret,
        run.supervisor_conf,
        run.pidfile,
        run.socket,
        *users_files,
    ):
        f.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # something else lives there: leave it
        run.root.rmdir()
    _say(f"removed the cluster's data and configuration in {run.root}")
    return 0


def status(run: RunDir, python: str) -> int:
    if not run.config.exists():
        _say(f"no cluster in {run.root} (start one with `make up`)")
        return 1
    cfg = load_config(run.config)
    sup = Supervisor(run, python)
    if sup.alive():
        names = set(_states(sup))
        comps = [c for c in all_components(cfg) if c.name in names]
        _say(f"supervisord: running (pid {sup.pid() or '?'})")
        ok = _print_table(run, sup, comps)
    else:
        _say("supervisord: not running")
        _print_table(run, None, all_components(cfg))
        ok = False
    return 0 if ok else 1


def logs(run: RunDir, component: str, follow: bool, lines: int) -> int:
    name = resolve_alias(component)
    path = run.log_of(name)
    if not path.exists():
        have = sorted(p.stem for p in run.logs.glob("*.log")) if run.logs.exists() else []
        raise ErrNoDataFound(
            f"no log for {component!r} at {path} (have: {', '.join(have) or 'none'})"
        )
    text = logtail.tail(path, lines)
    if text:
        print(text, flush=True)
    if follow:
        logtail.follow(path)
    return 0
