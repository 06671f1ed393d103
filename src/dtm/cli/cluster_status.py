"""`todo cluster status|conflicts|inspect`: the cluster as the sync and the data nodes see it.

    todo cluster status [--url URL | --config FILE] [--json] [--watch [--every S]]
    todo cluster conflicts [--limit N] [--json]      (dtm.cli.cluster_conflicts)
    todo cluster inspect <id> [--json]                (dtm.cli.cluster_inspect)

Rule: it reads `GET /v1/status` of the sync process (``--url``, else the ``[sync]`` address of
``--config``, else ``$DTM_SYNC_URL``, else the ``[sync]`` address of ./run/cluster.toml, else
http://127.0.0.1:7420) and, when it knows the cluster
config, of every data node (its clock: fenced or not, the offsets it measured), and renders them;
it changes nothing. It sends the cluster credential of ``--config`` (else of ./run/cluster.toml,
the local cluster, if there is one; ``$DTM_CLUSTER_SECRET`` wins over both). `render` and
`render_nodes` are pure, the `fetch_*` functions do the requests, `show` wires them.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn, TextIO, TypeVar

from dtm import wire
from dtm.auth import AUTH_HEADER, Credential, load_credential
from dtm.cli import cluster_fmt as fmt
from dtm.cli.render import visible
from dtm.errors import DtmError, ErrSyntaxInvalidArgs, ErrTimeout, ErrUnavailable

DEFAULT_SYNC_URL = "http://127.0.0.1:7420"
SYNC_URL_ENV = "DTM_SYNC_URL"
LOCAL_CLUSTER_CONFIG = Path("run") / "cluster.toml"


T = TypeVar("T")
NodeSeen = wire.NodeStatus | DtmError


def fetch_status(
    url: str,
    timeout: float = 5.0,
    credential: Credential | None = None,
    context: ssl.SSLContext | None = None,
) -> wire.SyncStatus:
    """The sync's `GET {url}/v1/status`, decoded; every failure is one of our errors."""
    return _get_status(url, wire.SyncStatus, "the sync process", timeout, credential, context)


def fetch_node_status(
    url: str,
    timeout: float = 5.0,
    credential: Credential | None = None,
    context: ssl.SSLContext | None = None,
) -> wire.NodeStatus:
    """A data node's `GET {url}/v1/status`, decoded; every failure is one of our errors."""
    return _get_status(url, wire.NodeStatus, "the data node", timeout, credential, context)


def _get_status(
    url: str,
    type_: type[T],
    who: str,
    timeout: float,
    credential: Credential | None,
    context: ssl.SSLContext | None,
) -> T:
    req = urllib.request.Request(url.rstrip("/") + "/v1/status")
    if credential is not None:
        req.add_header(AUTH_HEADER, credential.header_value)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            data = resp.read()
    except urllib.error.HTTPError as exc:
        raise wire.error_from_answer(exc.code, exc.read(), f"{who} at {url}") from None
    except TimeoutError:
        raise ErrTimeout(f"{who} at {url} did not answer within {timeout:.0f}s") from None
    except OSError as exc:
        raise ErrUnavailable(f"cannot reach {who} at {url}: {exc}") from None
    return wire.decode(data, type_, what=f"status of {who}")


def _health(st: wire.NodeStatus) -> str:
    return "FENCED: refuses client writes" if st.fenced else "ok"


def _offset(st: wire.NodeStatus) -> str:
    far = max(st.offsets.items(), key=lambda kv: abs(kv[1]), default=None)
    return "-" if far is None else f"{far[1]:+d} ms vs {far[0]}"


def render_nodes(nodes: list[tuple[str, wire.NodeStatus | DtmError]]) -> str:
    """One line per data node: health (fenced: it refuses client writes), epoch, last version,
    live rows, tombstones and the furthest clock offset it measured to a peer."""
    head = ("node", "health", "epoch", "version", "rows", "tombstones", "clock offset")
    table = [head]
    for name, st in nodes:
        if isinstance(st, DtmError):
            table.append((name, f"unreachable: {st.name}", "?", "?", "?", "?", "?"))
            continue
        row = (str(st.last_version), str(st.live_rows), str(st.tombstones), _offset(st))
        table.append((name, _health(st), st.epoch, *row))
    return "\n".join(fmt.table(table, frozenset({3, 4, 5})))


def _ms(v: float | None) -> str:
    return "?" if v is None else f"{v * 1000:.0f}"


def render(st: wire.SyncStatus, url: str) -> str:
    """The sync's view: one line per pair (cursor, lag in versions and ms), then conflicts,
    tombstones waiting to be purged (each with why, in plain words) and anti-entropy."""
    polls = ", ".join(f"{n} {st.rounds.get(n, 0)}" for n in st.nodes)
    lines = [f"sync {url} ({st.mode}): feed pages read: {polls}"]
    if st.forgotten:
        lines.append(f"forgotten (no longer synced): {' '.join(st.forgotten)}")
    head = ("pair", "cursor", "of", "behind", "lag ms", "rows sent", "conflicts", "")
    table = [head]
    for p in st.pairs:
        table.append(
            (
                f"{p.source} -> {p.target}",
                str(p.cursor),
                str(p.source_last_version),
                str(p.lag_versions),
                _ms(p.lag_seconds),
                str(p.rows_sent),
                str(p.conflicts),
                "" if p.reachable else "unreachable",
            )
        )
    lines += fmt.table(table, frozenset(range(1, 7)))
    for node, err in sorted(st.errors.items()):
        lines.append(f"{node}: {visible(err)}")
    lines.append(f"conflicts: {st.conflicts} (details: todo cluster conflicts)")
    lines.append(
        f"tombstones waiting to be purged: {st.tombstones_awaiting_purge}, purged so far: "
        f"{st.purged}"
    )
    for h in st.purge_holds:
        why = "; ".join(fmt.plain_reason(r) for r in h.waiting_for) or "nothing: purged soon"
        lines.append(
            f"  {visible(h.key)} (deleted on {h.origin} at {fmt.stamp_time(h.hlc)}) is kept "
            f"because {why}"
        )
    ae = st.anti_entropy
    if ae is None:
        lines.append("anti-entropy: not run yet")
    else:
        lines.append(
            f"anti-entropy at {fmt.ms_time(ae.at_ms)} over {', '.join(ae.nodes)}: "
            f"{ae.differing_buckets} of {ae.buckets} buckets differed, {ae.rows_repaired} rows "
            "repaired" + (f" (stopped: {visible(ae.error)})" if ae.error else "")
        )
    return "\n".join(lines)


def target(
    url: str | None, config: str | None, env: Mapping[str, str]
) -> tuple[str, Credential | None, list[tuple[str, str]]]:
    """Where the sync process answers, the credential to show it, and the data nodes (name,
    URL) when the cluster config is known."""
    from dtm.config import load_config

    path = Path(config) if config else LOCAL_CLUSTER_CONFIG
    cfg = load_config(path) if config or path.exists() else None
    credential = load_credential(cfg.secret_path if cfg is not None else None, env)
    nodes = [(n.name, n.url) for n in cfg.node] if cfg is not None else []
    if url:
        return url, credential, nodes if config else []
    if cfg is not None and (config or not env.get(SYNC_URL_ENV)):
        return cfg.sync.url, credential, nodes
    return env.get(SYNC_URL_ENV) or DEFAULT_SYNC_URL, credential, nodes


def _tls(config: str | None) -> ssl.SSLContext | None:
    """TLS to a cluster whose config has [tls]: trust its CA, show the operator certificate."""
    from dtm.config import load_config
    from dtm.tls import OPERATOR, client_context

    path = Path(config) if config else LOCAL_CLUSTER_CONFIG
    if not (config or path.exists()):
        return None  # an https URL with no cluster config: the system's trust store
    return client_context(load_config(path), OPERATOR)


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage mistake raised as our error (printed by the CLI's one reporter)."""

    def error(self, message: str) -> NoReturn:
        raise ErrSyntaxInvalidArgs(f"{self.prog.removeprefix('todo ')}: {message}")


def _parser(sub: str) -> _Parser:
    doc = {
        "status": "Every node and every sync pair, as the sync and the nodes see them.",
        "conflicts": "The newest conflicts the sync decided: winner, loser, what was lost.",
        "inspect": "One task's row on every data node, and whether they all have it yet.",
    }.get(sub)
    parser = _Parser(prog=f"todo cluster {sub}", description=doc)
    parser.add_argument("--url", help="the sync process's address")
    parser.add_argument("--config", help="the cluster TOML file (its addresses and credential)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    if sub == "status":
        parser.add_argument("--watch", action="store_true", help="redraw until Ctrl-C")
        parser.add_argument("--every", type=float, default=1.0, help="seconds between redraws")
    elif sub == "conflicts":
        parser.add_argument("--limit", default="20", help="show the newest N (default 20)")
    elif sub == "inspect":
        parser.add_argument("id", help="a task ID or a unique prefix of 4+ characters")
    return parser


def resolve(ns: argparse.Namespace, env: Mapping[str, str]) -> fmt.Target:
    url, credential, nodes = target(ns.url, ns.config, env)
    ctx = _tls(ns.config) if url.startswith("https:") else None
    return fmt.Target(url, credential, nodes, ctx)


def snapshot(t: fmt.Target) -> tuple[wire.SyncStatus | DtmError, list[tuple[str, NodeSeen]]]:
    try:
        sync: wire.SyncStatus | DtmError = fetch_status(
            t.sync_url, credential=t.credential, context=t.context
        )
    except DtmError as err:
        sync = err
    seen: list[tuple[str, NodeSeen]] = []
    for name, node_url in t.nodes:
        try:
            seen.append((name, fetch_node_status(node_url, 5.0, t.credential, t.context)))
        except DtmError as err:
            seen.append((name, err))
    return sync, seen


def _error_json(err: DtmError) -> dict[str, str]:
    return {"error": err.name, "message": str(err)}


def as_json(
    t: fmt.Target, sync: wire.SyncStatus | DtmError, seen: list[tuple[str, NodeSeen]]
) -> str:
    nodes = {n: _error_json(st) if isinstance(st, DtmError) else st for n, st in seen}
    body = {
        "sync_url": t.sync_url,
        "sync": _error_json(sync) if isinstance(sync, DtmError) else sync,
        "nodes": nodes,
    }
    return wire.encode(body).decode()


def as_text(
    t: fmt.Target, sync: wire.SyncStatus | DtmError, seen: list[tuple[str, NodeSeen]]
) -> str:
    parts = [render_nodes(seen)] if seen else []
    if isinstance(sync, DtmError):
        parts.append(f"sync {t.sync_url}: unreachable: {sync.name}: {visible(str(sync))}")
    else:
        parts.append(render(sync, t.sync_url))
    return "\n".join(parts)


def show(argv: list[str], env: Mapping[str, str] | None = None) -> str:
    """`todo cluster status [--url URL | --config FILE]`: the view as text; errors are raised."""
    ns = _parser("status").parse_args(argv)
    t = resolve(ns, os.environ if env is None else env)
    sync, seen = snapshot(t)
    if isinstance(sync, DtmError):
        raise sync
    return as_text(t, sync, seen)


def main(sub: str, argv: list[str], json: bool, out: TextIO) -> int:
    """`todo cluster status|conflicts|inspect …`: print the view; errors are raised."""
    ns = _parser(sub).parse_args(argv)
    json = json or ns.json
    t = resolve(ns, os.environ)
    if sub == "conflicts":
        from dtm.cli import cluster_conflicts

        out.write(cluster_conflicts.show(t, ns, json) + "\n")
        return 0
    if sub == "inspect":
        from dtm.cli import cluster_inspect

        out.write(cluster_inspect.show(t, ns, json) + "\n")
        return 0
    if ns.watch:
        return watch(t, json, out, max(0.2, ns.every))
    sync, seen = snapshot(t)
    if isinstance(sync, DtmError) and not seen:
        raise sync  # nothing to show
    out.write((as_json(t, sync, seen) if json else as_text(t, sync, seen)) + "\n")
    out.flush()
    if isinstance(sync, DtmError):  # the nodes were shown; the exit code says the sync is not
        raise sync
    return 0


CLEAR = "\x1b[H\x1b[2J"


def watch(t: fmt.Target, json: bool, out: TextIO, every: float) -> int:
    """Redraw the status every ``every`` seconds (JSON: one line each) until Ctrl-C."""
    try:
        while True:
            sync, seen = snapshot(t)
            if json:
                out.write(as_json(t, sync, seen) + "\n")
            else:
                stamp = time.strftime("%H:%M:%S")
                out.write(f"{CLEAR}{as_text(t, sync, seen)}\n\n{stamp}  (Ctrl-C to leave)\n")
            out.flush()
            time.sleep(every)
    except KeyboardInterrupt:
        if not json:
            out.write("\n")
        return 0


if __name__ == "__main__":
    from dtm.cli.main import main as cli_main

    sys.exit(cli_main(["cluster", "status", *sys.argv[1:]]))
