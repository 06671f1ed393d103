"""Where a local cluster keeps its state, and which components it runs.

Rule: everything a local cluster owns lives under one run directory (``./run`` by default):
the cluster config, the supervisord config, socket, pid file and log, ``data/`` and ``logs/``;
a component runs only if its module exists (``dtm.<kind>.main``) and it was selected.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from dtm.config import ClusterConfig
from dtm.errors import ErrSyntaxInvalidArgs

SERVICES = ("balancer", "handler", "sync", "view")
# Names a user may type for a component's logs, and the component they mean.
ALIASES = {"loadbalancer": "balancer", "loadbrancer": "balancer", "lb": "balancer"}
# A unix socket path must fit in sockaddr_un (108 bytes on Linux, with the NUL).
MAX_SOCKET_PATH = 100


@dataclass(frozen=True)
class RunDir:
    """The files of one local cluster, all absolute."""

    root: Path

    @classmethod
    def at(cls, path: str | Path) -> RunDir:
        return cls(Path(os.path.abspath(path)))

    @property
    def config(self) -> Path:
        return self.root / "cluster.toml"

    @property
    def secret(self) -> Path:
        """The cluster secret file (``secret_file = "secret"`` in the config)."""
        return self.root / "secret"

    @property
    def supervisor_conf(self) -> Path:
        return self.root / "supervisord.conf"

    @property
    def socket(self) -> Path:
        return self.root / "supervisord.sock"

    @property
    def pidfile(self) -> Path:
        return self.root / "supervisord.pid"

    @property
    def supervisor_log(self) -> Path:
        return self.logs / "supervisord.log"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log_of(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def check_socket_path(self) -> None:
        if len(str(self.socket).encode()) > MAX_SOCKET_PATH:
            raise ErrSyntaxInvalidArgs(
                f"run directory path is too long for a unix socket: {self.socket}"
            )


@dataclass(frozen=True)
class Component:
    """One supervised program: its name, what it is, where it answers, how it starts."""

    name: str
    kind: str  # "node", "balancer", "handler" or "sync"
    url: str
    priority: int

    def argv(self, python: str, config: Path) -> list[str]:
        argv = [python, "-m", "dtm.run", self.kind, "--config", str(config)]
        if self.kind == "node":
            argv += ["--name", self.name]
        return argv


def module_exists(kind: str) -> bool:
    """True if ``dtm.<kind>.main`` can be imported (the component has been written)."""
    try:
        return importlib.util.find_spec(f"dtm.{kind}.main") is not None
    except ImportError:
        return False


def venv_python() -> str:
    """The interpreter running us, as an absolute path (the venv's own, not its target)."""
    return os.path.abspath(sys.executable)


def all_components(cfg: ClusterConfig) -> list[Component]:
    """Every component the config names whose module exists, nodes first."""
    comps = [Component(n.name, "node", n.url, 100) for n in cfg.node if module_exists("node")]
    sections = {"balancer": cfg.balancer.url, "handler": cfg.handler.url, "sync": cfg.sync.url}
    if cfg.view is not None:  # the live view runs only where the config asks for it
        sections["view"] = cfg.view.url
    priorities = {"balancer": 200, "handler": 300, "sync": 300, "view": 400}
    for kind in SERVICES:
        if kind in sections and module_exists(kind):
            comps.append(Component(kind, kind, sections[kind], priorities[kind]))
    return comps


def select(cfg: ClusterConfig, wanted: list[str] | None) -> list[Component]:
    """The components to run: all available ones, or those named in ``wanted``.

    ``wanted`` holds component names (store1, balancer, ...), aliases, or ``nodes`` for every
    data node; naming a component whose module does not exist yet is an error.
    """
    available = all_components(cfg)
    if not wanted:
        if not available:
            raise ErrSyntaxInvalidArgs("no component is available to run (no dtm.node.main)")
        return available
    names: set[str] = set()
    known = {n.name for n in cfg.node} | set(SERVICES)
    for raw in wanted:
        for item in (p.strip() for p in raw.split(",")):
            if not item:
                continue
            item = ALIASES.get(item, item)
            if item == "nodes":
                names |= {n.name for n in cfg.node}
            elif item in known:
                names.add(item)
            else:
                raise ErrSyntaxInvalidArgs(
                    f"unknown component {item!r} (have: {', '.join(sorted(known))}, nodes)"
                )
    by_name = {c.name: c for c in available}
    missing = sorted(names - set(by_name))
    if missing:
        raise ErrSyntaxInvalidArgs(f"not available yet (no module): {', '.join(missing)}")
    return [c for c in available if c.name in names]


def resolve_alias(name: str) -> str:
    return ALIASES.get(name, name)
