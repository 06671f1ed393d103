"""`todo cluster status`: the sync process's view of the cluster, as a table.

    todo cluster status [--url URL | --config FILE]

Rule: it reads `GET /v1/status` of the sync process (``--url``, else the ``[sync]`` address of
``--config``, else ``$DTM_SYNC_URL``, else http://127.0.0.1:7420) and, when it knows the cluster
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
from typing import NoReturn, TypeVar

from dtm import wire
from dtm.auth import AUTH_HEADER, Credential, load_credential
from dtm.errors import DtmError, ErrSyntaxInvalidArgs, ErrTimeout, ErrUnavailable

DEFAULT_SYNC_URL = "http://127.0.0.1:7420"
SYNC_URL_ENV = "DTM_SYNC_URL"
LOCAL_CLUSTER_CONFIG = Path("run") / "cluster.toml"


T = TypeVar("T")


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


def render_nodes(nodes: list[tuple[str, wire.NodeStatus | DtmError]]) -> str:
    """One line per data node: its version, rows and clock (fenced: it refuses client writes)."""
    table = [("node", "epoch", "version", "rows", "tombstones", "clock")]
    for name, st in nodes:
        if isinstance(st, DtmError):
            table.append((name, "?", "?", "?", "?", f"unreachable: {st.name}"))
            continue
        far = max(st.offsets.values(), key=abs, default=None)
        offset = "" if far is None else f", furthest peer {far:+d} ms"
        clock = ("FENCED: refuses client writes" if st.fenced else "ok") + offset
        row = (str(st.last_version), str(st.live_rows), str(st.tombstones), clock)
        table.append((name, st.epoch, *row))
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5]
        for r in table
    )


def _secs(v: float | None) -> str:
    return "?" if v is None else f"{v:.2f}"


def render(st: wire.SyncStatus, url: str) -> str:
    """The status as text: one line per pair, then conflicts, purges and anti-entropy."""
    lines = [f"sync {url} ({st.mode}) nodes: {' '.join(st.nodes)}"]
    if st.forgotten:
        lines.append(f"forgotten: {' '.join(st.forgotten)}")
    head = ("pair", "cursor", "lag", "lag s", "sent", "conflicts", "")
    table = [head]
    for p in st.pairs:
        table.append(
            (
                f"{p.source} -> {p.target}",
                str(p.cursor),
                str(p.lag_versions),
                _secs(p.lag_seconds),
                str(p.rows_sent),
                str(p.conflicts),
                "" if p.reachable else "unreachable",
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    for r in table:
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    for node, err in sorted(st.errors.items()):
        lines.append(f"{node}: {err}")
    lines.append(
        f"conflicts: {st.conflicts} (see /v1/conflicts)   tombstones awaiting purge: "
        f"{st.tombstones_awaiting_purge}   purged: {st.purged}"
    )
    for h in st.purge_holds:
        lines.append(f"  {h.key} ({h.origin}@{h.hlc}) waits for: {'; '.join(h.waiting_for)}")
    ae = st.anti_entropy
    if ae is None:
        lines.append("anti-entropy: not run yet")
    else:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ae.at_ms / 1000))
        lines.append(
            f"anti-entropy at {when} over {', '.join(ae.nodes)}: {ae.differing_buckets} of "
            f"{ae.buckets} buckets differed, {ae.rows_repaired} rows repaired"
            + (f" (stopped: {ae.error})" if ae.error else "")
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
    if config and cfg is not None:
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
        raise ErrSyntaxInvalidArgs(f"cluster status: {message}")


def show(argv: list[str], env: Mapping[str, str] | None = None) -> str:
    """`todo cluster status [--url URL | --config FILE]`: the view as text; errors are raised."""
    parser = _Parser(prog="todo cluster status", description=__doc__)
    parser.add_argument("--url", help="the sync process's address")
    parser.add_argument("--config", help="the cluster TOML file (its [sync] address)")
    ns = parser.parse_args(argv)
    url, credential, nodes = target(ns.url, ns.config, os.environ if env is None else env)
    ctx = _tls(ns.config) if url.startswith("https:") else None
    text = render(fetch_status(url, credential=credential, context=ctx), url)
    if not nodes:
        return text
    seen: list[tuple[str, wire.NodeStatus | DtmError]] = []
    for name, node_url in nodes:
        try:
            seen.append((name, fetch_node_status(node_url, credential=credential, context=ctx)))
        except DtmError as err:
            seen.append((name, err))
    return render_nodes(seen) + "\n" + text


if __name__ == "__main__":
    from dtm.cli.main import main

    sys.exit(main(["cluster", "status", *sys.argv[1:]]))
