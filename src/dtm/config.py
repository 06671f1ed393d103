"""The cluster configuration: one TOML file that names every component and its address.

Rule: the file is read once, in a component's ``main()``, into frozen structs; an unknown key, a
missing node or a bad value is an error that names the key. Every component reads the same file,
so one file describes a one-machine cluster and a many-machine one alike.

    [cluster]
    data_dir = "data"              # relative paths are relative to this file
    log_dir = "logs"

    [[node]]                       # one table per data node
    name = "store1"
    host = "127.0.0.1"             # the address the other components dial
    port = 7411
    # listen = "0.0.0.0"           # optional: the address to bind, when it differs from host
                                   # (a container, a Kubernetes Service, a swarm VIP)

    [balancer]                     # host, port, timeouts ...
    [handler]
    # balancers = ["lb1:7401", "lb2:7401"]   # optional: the balancers it fails over between
                                              # (default: the [balancer] address)
    # write_copies = 2             # optional: acknowledge a write once 2 nodes hold it (the
                                   # handler then reaches the nodes directly, for the copies)
    [sync]

    [tls]                          # optional: TLS on every hop (see docs/security.md)
    ca_file = "certs/ca.pem"
    cert_dir = "certs"             # <component>.pem and <component>.key for each component
    client_certs = true            # components must show a certificate on internal hops
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import msgspec

from dtm.errors import ErrSyntaxInvalidArgs
from dtm.wire import NODE_NAME_PATTERN

if TYPE_CHECKING:
    import argparse

DEFAULT_NODE_BASE_PORT = 7410
# A container image names its config here, so every command in it needs no --config.
CONFIG_ENV = "DTM_CONFIG"
# A sync batch lands at most this many call timeouts after its rows were read (look, replicate,
# and a read-ahead page waiting for the previous delivery): only then may a decided purge go out.
PURGE_FENCE_CALLS = 4


def add_config_flag(parser: argparse.ArgumentParser, env: Mapping[str, str] = os.environ) -> None:
    """`--config FILE`: required unless ``$DTM_CONFIG`` names the file."""
    default = env.get(CONFIG_ENV) or None
    parser.add_argument(
        "--config",
        required=default is None,
        default=default,
        help=f"the cluster TOML file (default: ${CONFIG_ENV})",
    )


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class ClusterSection(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    data_dir: str = "data"
    log_dir: str = "logs"
    # The cluster credential (see dtm.auth); "" means none, allowed only on loopback addresses.
    secret_file: str = ""


class _Listener(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A section of a component that listens on an address."""

    host: str = "127.0.0.1"
    port: int
    # The address to bind; "" binds `host`. The others always dial `host`: a name or VIP that
    # reaches this component need not be an address of its own (containers, Services).
    listen: str = ""
    # A connection must deliver a whole request head within this (else 408), and may be open
    # at most max_connections at once.
    head_timeout_ms: int = 10000
    max_connections: int = 1024
    # Set from the [tls] section when the file is read (a key of its own in the file is refused).
    tls: bool = False

    @property
    def url(self) -> str:
        """Where the other components reach this one."""
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def bind_host(self) -> str:
        """The address this component listens on."""
        return self.listen or self.host


class NodeConfig(_Listener, frozen=True, forbid_unknown_fields=True, kw_only=True):
    name: str
    host: str = "127.0.0.1"
    port: int
    # Test-only: shift this node's physical clock, to show that ordering survives clock skew.
    clock_offset_ms: int = 0
    max_clock_offset_ms: int = 500
    max_value_bytes: int = 64 * 1024
    max_batch_bytes: int = 8 * 1024 * 1024
    # A page of GET /v1/kv or /v1/changes stops once its rows reach this many bytes (>= 1 row).
    max_page_bytes: int = 4 * 1024 * 1024
    # Group commit: at most this many writes share one transaction.
    max_group: int = 512


class BalancerConfig(_Listener, frozen=True, forbid_unknown_fields=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 7401
    connect_timeout_ms: int = 500
    read_timeout_ms: int = 5000
    health_interval_ms: int = 500
    # Balancer: a health check gets this long; this many failed checks in a row eject a node.
    health_timeout_ms: int = 1000
    health_fall: int = 2
    max_body_bytes: int = 16 * 1024 * 1024
    # Request bodies held across all client connections; beyond it a request is answered 503.
    max_buffered_bytes: int = 64 * 1024 * 1024
    # A client connection with no request in progress and nothing received is closed after this.
    client_idle_timeout_ms: int = 60000


class HandlerConfig(_Listener, frozen=True, forbid_unknown_fields=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 7400
    timeout_ms: int = 10000
    # Where a read waits for a replica to catch up with the session token.
    catch_up_wait_ms: int = 1000
    # The users and their token hashes (see `dtm user`); relative to the config file.
    users_file: str = "users.json"
    # The load balancers it sends to, "host:port" each ("[v6]:port"), failing over between
    # them (dtm.handler.upstream); empty: the [balancer] section's address alone.
    balancers: tuple[str, ...] = ()
    # With several balancers, how long a connection to one may take before the next is tried.
    connect_timeout_ms: int = 1000
    # How many nodes hold a write before it is acknowledged (dtm.handler.copies): 1 = the node
    # that took it; 2 = also another one, to which the handler itself pushed the stored row
    # (straight to the [[node]] addresses, with the cluster credential), waited for up to
    # copy_wait_ms (which also bounds each push).
    write_copies: int = 1
    copy_wait_ms: int = 1000
    # When the wait runs out short: acknowledge the write anyway, or answer ErrMaybeApplied.
    copy_shortfall: Literal["acknowledge", "refuse"] = "acknowledge"
    # The handler's copies of node pages (and the tasks it made of them), revalidated with the
    # node's ETag (dtm.handler.pagecache); 0 keeps none.
    page_cache_mib: int = 32
    # While lists are read, watch each node's version (straight to the [[node]] addresses) and
    # serve a copy the watch vouches for without asking the node (dtm.core.pagefresh): a list
    # of another session may then miss, for a few ms, a write this handler did not send; false:
    # every list asks a node.
    page_watch: bool = True


class SyncConfig(_Listener, frozen=True, forbid_unknown_fields=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 7420
    mode: Literal["longpoll", "interval"] = "longpoll"
    interval_ms: int = 500
    wait_ms: int = 5000
    batch: int = 4000  # rows per feed page and batch (a larger one costs less per row)
    anti_entropy_interval_ms: int = 30000
    # Timeout of each call to a data node; a decided purge waits 4x this (see docs/design.md).
    call_timeout_ms: int = 10000


class ViewConfig(_Listener, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The live view in the browser (dtm.view); it runs only if the file has a [view] table."""

    host: str = "127.0.0.1"
    port: int = 7430
    # How often it reads every component's status, and how many events it keeps for replay.
    poll_ms: int = 250
    max_events: int = 2000
    max_clients: int = 16


class TlsSection(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """TLS on every hop (see dtm.tls); both paths are relative to the config file."""

    ca_file: str
    cert_dir: str = "certs"
    client_certs: bool = False


class ClusterConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    cluster: ClusterSection = ClusterSection()
    node: tuple[NodeConfig, ...]
    balancer: BalancerConfig = BalancerConfig()
    handler: HandlerConfig = HandlerConfig()
    sync: SyncConfig = SyncConfig()
    view: ViewConfig | None = None
    tls: TlsSection | None = None
    # Where the file was read from; relative directories resolve against it.
    base_dir: str = "."

    def node_named(self, name: str) -> NodeConfig:
        for n in self.node:
            if n.name == name:
                return n
        names = ", ".join(n.name for n in self.node)
        raise ErrSyntaxInvalidArgs(f"no node named {name!r} in the cluster config (have: {names})")

    @property
    def data_dir(self) -> Path:
        return Path(self.base_dir) / self.cluster.data_dir

    @property
    def log_dir(self) -> Path:
        return Path(self.base_dir) / self.cluster.log_dir

    @property
    def secret_path(self) -> Path | None:
        """The cluster secret file, if the config names one."""
        return Path(self.base_dir) / self.cluster.secret_file if self.cluster.secret_file else None

    @property
    def components(self) -> list[tuple[str, _Listener]]:
        """Every component by name: store1.., balancer, handler, sync."""
        named: list[tuple[str, _Listener]] = [(n.name, n) for n in self.node]
        named += [("balancer", self.balancer), ("handler", self.handler), ("sync", self.sync)]
        return named + ([("view", self.view)] if self.view is not None else [])

    @property
    def users_path(self) -> Path:
        return Path(self.base_dir) / self.handler.users_file

    @property
    def balancer_urls(self) -> list[str]:
        """Where the handler reaches the load balancers: ``[handler] balancers``, else the
        [balancer] section's address."""
        if not self.handler.balancers:
            return [self.balancer.url]
        scheme = "https" if self.tls is not None else "http"
        return [f"{scheme}://{entry}" for entry in self.handler.balancers]


def parse_config(text: str, base_dir: str = ".") -> ClusterConfig:
    """Parse the TOML text of a cluster config; every problem is an ErrSyntaxInvalidArgs."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ErrSyntaxInvalidArgs(f"cluster config is not valid TOML: {exc}") from None
    if "base_dir" in raw:
        raise ErrSyntaxInvalidArgs("cluster config: unknown key 'base_dir'")
    raw["base_dir"] = base_dir
    for sec in [
        *_as_list(raw.get("node")),
        *(raw.get(k) for k in ("balancer", "handler", "sync", "view")),
    ]:
        if isinstance(sec, dict) and "tls" in sec:
            raise ErrSyntaxInvalidArgs("cluster config: unknown key 'tls' (see the [tls] section)")
    try:
        cfg = msgspec.convert(raw, ClusterConfig)
    except msgspec.ValidationError as exc:
        raise ErrSyntaxInvalidArgs(f"cluster config: {exc}") from None
    _check(cfg)
    if cfg.tls is not None:
        cfg = msgspec.structs.replace(
            cfg,
            node=tuple(msgspec.structs.replace(n, tls=True) for n in cfg.node),
            balancer=msgspec.structs.replace(cfg.balancer, tls=True),
            handler=msgspec.structs.replace(cfg.handler, tls=True),
            sync=msgspec.structs.replace(cfg.sync, tls=True),
            view=msgspec.structs.replace(cfg.view, tls=True) if cfg.view is not None else None,
        )
    return cfg


def _as_list(v: object) -> list[object]:
    return list(v) if isinstance(v, list) else []


def load_config(path: str | Path) -> ClusterConfig:
    """Read and parse the cluster config file at ``path``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ErrSyntaxInvalidArgs(f"cannot read cluster config {str(p)!r}: {exc}") from None
    return parse_config(text, str(p.resolve().parent))


def _check(cfg: ClusterConfig) -> None:
    if not cfg.node:
        raise ErrSyntaxInvalidArgs("cluster config names no [[node]]")
    names = [n.name for n in cfg.node]
    if len(set(names)) != len(names):
        raise ErrSyntaxInvalidArgs(f"cluster config: node names repeat: {names}")
    for n in cfg.node:
        if re.search(NODE_NAME_PATTERN, n.name) is None:  # what the wire's NodeName accepts
            raise ErrSyntaxInvalidArgs(f"cluster config: bad node name {n.name!r}")
    for entry in cfg.handler.balancers:
        host_port(entry, "[handler] balancers")
    if len(set(cfg.handler.balancers)) != len(cfg.handler.balancers):
        raise ErrSyntaxInvalidArgs("cluster config: [handler] balancers lists one twice")
    if cfg.handler.connect_timeout_ms <= 0:
        raise ErrSyntaxInvalidArgs("cluster config: [handler] connect_timeout_ms must be > 0")
    if not 1 <= cfg.handler.write_copies <= len(cfg.node):
        raise ErrSyntaxInvalidArgs(
            f"cluster config: [handler] write_copies must be 1..{len(cfg.node)} (the nodes)"
        )
    if not 0 <= cfg.handler.page_cache_mib <= 4096:
        raise ErrSyntaxInvalidArgs("cluster config: [handler] page_cache_mib must be 0..4096")
    if not 0 < cfg.handler.copy_wait_ms <= 10_000:
        raise ErrSyntaxInvalidArgs("cluster config: [handler] copy_wait_ms must be 1..10000")
    offset = max(n.max_clock_offset_ms for n in cfg.node)
    fence = PURGE_FENCE_CALLS * cfg.sync.call_timeout_ms
    if cfg.handler.write_copies > 1 and cfg.handler.copy_wait_ms + offset >= fence:
        # A pushed copy lands within copy_wait_ms (its deadline) plus the clocks' offset; the
        # sync purges a tombstone only once older than its fence, so no late copy outlives one.
        raise ErrSyntaxInvalidArgs(
            f"cluster config: [handler] copy_wait_ms ({cfg.handler.copy_wait_ms}) plus the max "
            f"clock offset ({offset}) must stay under {PURGE_FENCE_CALLS} x [sync] "
            f"call_timeout_ms ({fence}), the age a tombstone must reach before it is purged"
        )
    ports = [(c.host, c.port) for _, c in cfg.components]
    for host, port in ports:
        if not 0 < port < 65536:
            raise ErrSyntaxInvalidArgs(f"cluster config: bad port {port} for {host}")
    if len(set(ports)) != len(ports):
        raise ErrSyntaxInvalidArgs("cluster config: two components share one address")


def host_port(entry: str, where: str) -> tuple[str, int]:
    """A ``host:port`` (or ``[v6]:port``) entry as its parts; ErrSyntaxInvalidArgs naming it."""
    bad = ErrSyntaxInvalidArgs(f"cluster config: {where}: {entry!r} is not host:port")
    if entry.startswith("["):
        host, close, rest = entry[1:].partition("]")
        if not close or not rest.startswith(":"):
            raise bad
        port_text = rest[1:]
    else:
        host, _, port_text = entry.rpartition(":")
        if ":" in host:
            raise bad
    if not host or re.fullmatch(r"[A-Za-z0-9._:-]+", host) is None:
        raise bad
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise bad
    return host, int(port_text)


def default_config_text(nodes: int = 2, host: str = "127.0.0.1", base: int = 7400) -> str:
    """The local default: handler on ``base`` (7400), balancer base+1, store1..N on base+11..,
    sync base+20, the live view base+30."""
    if not 1 <= nodes <= 9:
        raise ErrSyntaxInvalidArgs(f"NODES must be 1..9, not {nodes}")
    parts = [
        "# dtm cluster configuration: every component reads this file.",
        "[cluster]",
        'data_dir = "data"',
        'log_dir = "logs"',
        'secret_file = "secret"',
        "",
    ]
    for i in range(1, nodes + 1):
        parts += [
            "[[node]]",
            f'name = "store{i}"',
            f'host = "{host}"',
            f"port = {base + DEFAULT_NODE_BASE_PORT - 7400 + i}",
            "",
        ]
    parts += [
        "[balancer]",
        f'host = "{host}"',
        f"port = {base + 1}",
        "",
        "[handler]",
        f'host = "{host}"',
        f"port = {base}",
        "",
        "[sync]",
        f'host = "{host}"',
        f"port = {base + 20}",
        "",
        "[view]  # the live view in the browser: dtm.view",
        f'host = "{host}"',
        f"port = {base + 30}",
        "",
    ]
    return "\n".join(parts)
