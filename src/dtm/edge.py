"""What every component's ``main()`` does the same way: flags, logging, config, the cluster
credential, file modes, listening, stop signals, and how a start-up failure is reported.

Rule: a component starts through `run` (an aiohttp service, or a `Lean` server of its own such as
a data node's) or through the same pieces
(`configure_logging`, `prepare`, `check_listen`, `report`, `until_stopped`) for a server of its
own (the balancer); a process makes its files private (umask 077), refuses to listen on a
non-loopback address without a credential, and turns every start-up failure into one log line
``cannot start: <ErrName>: <message>`` and that error's exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import ssl
import sys
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from typing import Protocol

import uvloop
from aiohttp import web

from dtm.auth import Credential, load_credential
from dtm.config import ClusterConfig, add_config_flag, load_config
from dtm.errors import DtmError, ErrSyntaxInvalidArgs, ErrUnavailable
from dtm.hosts import is_loopback
from dtm.serve import (
    Guard,
    GuardedRunner,
    Limits,
    everything_but_open_paths,
    guard_app,
)
from dtm.tls import client_context, server_context

log = logging.getLogger("dtm.edge")

PRIVATE_UMASK = 0o077
SHUTDOWN_TIMEOUT_S = 10.0


def configure_logging(component: str) -> None:
    """One line per event on stderr: time, level, component, logger, message."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s {component} %(name)s: %(message)s",
    )


async def until_stopped() -> None:
    """Return once the process gets SIGTERM or SIGINT (on the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


# ---------------------------------------------------------------- start-up


@dataclass(frozen=True)
class Startup:
    """What a component knows once its config is read: the cluster, its credential, its name."""

    cluster: ClusterConfig
    credential: Credential | None
    name: str = ""  # store1.., balancer, handler, sync: whose TLS certificate it uses

    def server_ssl(self) -> ssl.SSLContext | None:
        """What it serves with: None without the config's [tls] section (plain HTTP)."""
        return server_context(self.cluster, self.name)

    def client_ssl(self) -> ssl.SSLContext | None:
        """What its calls to other components use: None without [tls]."""
        return client_context(self.cluster, self.name)

    @property
    def auth_headers(self) -> dict[str, str]:
        """The header an outgoing internal call carries (none without a credential)."""
        if self.credential is None:
            return {}
        return {"Authorization": self.credential.header_value}


def prepare(config_path: str, name: str = "") -> Startup:
    """Make new files private, read the cluster config and the credential (env or file)."""
    os.umask(PRIVATE_UMASK)
    cluster = load_config(config_path)
    return Startup(cluster, load_credential(cluster.secret_path, os.environ), name)


def check_listen(host: str, port: int, credential: Credential | None) -> None:
    """Refuse a bad port, and a non-loopback address without a cluster credential."""
    if not 0 < port < 65536:
        raise ErrSyntaxInvalidArgs(f"bad port {port}: it must be in 1..65535")
    if credential is None and not is_loopback(host):
        raise ErrSyntaxInvalidArgs(
            f"refusing to listen on {host!r} (not a loopback address) without the cluster "
            "credential: set [cluster] secret_file in the cluster config (or $DTM_CLUSTER_SECRET)"
        )


def private_dir(path: os.PathLike[str] | str) -> None:
    """Create ``path`` (and parents) if needed and make it 0700."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)


def report(start: Callable[[], int]) -> int:
    """Run ``start``; a start-up failure becomes one log line and its exit code."""
    try:
        return start()
    except DtmError as err:
        log.error("cannot start: %s: %s", err.name, err.message)
        return err.exit_code
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1


# ---------------------------------------------------------------- aiohttp services


@dataclass(frozen=True)
class Listen:
    """Where a service listens, and its bounds."""

    host: str
    port: int
    head_timeout_ms: int = 10000
    max_connections: int = 1024
    tls: bool = False  # set by `run` from the config's [tls] section

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def limits(self) -> Limits:
        s = self.head_timeout_ms / 1000
        return Limits(head_timeout_s=s, body_timeout_s=s, max_connections=self.max_connections)


def settle_heap(young_every: int | None = None) -> None:
    """Once a component listens: what start-up made lives on, so the collector stops scanning
    it (gc.freeze; a data node left unfrozen made a full collection of 20-30 ms about every 0.4 s
    under a steady write load, a pause every request and replication waited out). With
    ``young_every``, the young generation is collected every that many allocations instead of
    Python's 700, and each older one every 20 of the one below: only for a component whose
    garbage holds no large buffers in reference cycles (a connection's protocol and its parser
    form one, and a balancer or a node holding a flood of closed connections' bodies until a
    rare collection would outgrow its buffer caps)."""
    gc.collect()
    gc.freeze()
    if young_every is not None:
        gc.set_threshold(young_every, 20, 20)


class Lean(Protocol):
    """A server of a component's own (`dtm.site.Site`): the listener's checks, a protocol per
    connection, and a drain that refuses new requests and waits for those being answered."""

    guard: Guard

    def conn(self) -> asyncio.Protocol: ...

    async def drain(self, timeout_s: float) -> None: ...


@dataclass
class Served:
    """What a component's build hands the edge: its app (or lean server) and its hooks."""

    app: web.Application | Lean
    banner: Callable[[], str]  # logged once listening
    needs_credential: Callable[[str], bool] = everything_but_open_paths
    listening: Callable[[], None] | None = None  # after the socket is open
    stopping: Callable[[], Awaitable[None]] | None = None  # before connections are closed
    shutdown_timeout_s: float = SHUTDOWN_TIMEOUT_S


Build = Callable[[Startup, argparse.Namespace, Listen], AbstractAsyncContextManager[Served]]


@dataclass(frozen=True)
class Component:
    """How one aiohttp component starts: its flags, log label, address and build."""

    prog: str
    description: str
    label: Callable[[argparse.Namespace], str]
    listen: Callable[[Startup, argparse.Namespace], Listen]
    build: Build
    flags: Callable[[argparse.ArgumentParser], None] = field(default=lambda _p: None)
    # Its name in the cluster (whose TLS certificate it serves with); default: its label.
    name: Callable[[argparse.Namespace], str] | None = None
    # Allocations between two young-generation collections once started (`settle_heap`).
    gc_young_every: int | None = None


def run(comp: Component, argv: list[str]) -> int:
    """Parse ``argv``, start ``comp`` and serve until a stop signal; the exit code."""
    parser = argparse.ArgumentParser(prog=comp.prog, description=comp.description)
    add_config_flag(parser)
    parser.add_argument(
        "--listen", metavar="ADDRESS", help="bind this address instead of the config's"
    )
    comp.flags(parser)
    ns = parser.parse_args(argv)
    configure_logging(comp.label(ns))

    def start() -> int:
        startup = prepare(ns.config, (comp.name or comp.label)(ns))
        where = replace(comp.listen(startup, ns), tls=startup.cluster.tls is not None)
        if ns.listen:
            where = replace(where, host=ns.listen)
        check_listen(where.host, where.port, startup.credential)
        return uvloop.run(_serve(comp, startup, ns, where))

    return report(start)


async def _serve(comp: Component, startup: Startup, ns: argparse.Namespace, where: Listen) -> int:
    server_ssl = startup.server_ssl()  # before anything starts: a bad certificate fails start-up
    async with comp.build(startup, ns, where) as served:
        guard = Guard(startup.credential, is_loopback(where.host), served.needs_credential)
        if isinstance(served.app, web.Application):
            finish = await _start_aiohttp(served, served.app, guard, where, server_ssl)
        else:
            served.app.guard = guard
            finish = await _start_lean(served, served.app, where, server_ssl)
        if served.listening is not None:
            served.listening()
        settle_heap(comp.gc_young_every)
        log.info("%s", served.banner())
        await until_stopped()
        log.info("stopping: finishing pending requests")
        if served.stopping is not None:
            await served.stopping()
        await finish()
    return 0


Finish = Callable[[], Awaitable[None]]


async def _start_aiohttp(
    served: Served,
    app: web.Application,
    guard: Guard,
    where: Listen,
    server_ssl: ssl.SSLContext | None,
) -> Finish:
    """Listen with aiohttp; what stops it (letting pending requests finish)."""
    guard_app(app, guard)
    runner = GuardedRunner(app, where.limits(), served.shutdown_timeout_s)
    await runner.setup()
    try:
        site = web.TCPSite(
            runner, where.host, where.port, backlog=1024, reuse_address=True, ssl_context=server_ssl
        )
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ErrUnavailable(f"cannot listen on {where.host}:{where.port}: {exc}") from None
    return runner.cleanup


async def _start_lean(
    served: Served, lean: Lean, where: Listen, server_ssl: ssl.SSLContext | None
) -> Finish:
    """Listen with a component's own server; what stops it (letting pending requests finish)."""
    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(
            lean.conn, where.host, where.port, backlog=1024, reuse_address=True, ssl=server_ssl
        )
    except OSError as exc:
        raise ErrUnavailable(f"cannot listen on {where.host}:{where.port}: {exc}") from None

    async def finish() -> None:
        server.close()
        await lean.drain(served.shutdown_timeout_s)

    return finish
