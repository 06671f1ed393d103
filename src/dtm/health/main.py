"""`dtm health [component] [--config FILE]`: exit 0 if the component is healthy, 1 if not.

Rule: ask ``GET /healthz`` at the address the component listens on (a wildcard listen address
is asked over the loopback), with the cluster's TLS settings, and print one line; no shell, no
curl and no Python one-liner are needed, so Docker's HEALTHCHECK, compose, a Kubernetes probe
and systemd all run the same command. The component defaults to ``$DTM_COMPONENT`` and the file
to ``$DTM_CONFIG``, so an image's exec-form ``HEALTHCHECK ["dtm", "health"]`` needs no shell.
"""

from __future__ import annotations

import argparse
import os
import sys

from dtm.errors import DtmError

USAGE_EXIT = 2
COMPONENT_ENV = "DTM_COMPONENT"


def main(argv: list[str]) -> int:
    from dtm.config import add_config_flag, load_config

    parser = argparse.ArgumentParser(
        prog="dtm health",
        description="Exit 0 if a component answers its health check, 1 if it does not.",
    )
    parser.add_argument(
        "component",
        nargs="?",
        default=os.environ.get(COMPONENT_ENV) or None,
        help=f"store1.., balancer, handler or sync (default: ${COMPONENT_ENV})",
    )
    add_config_flag(parser)
    parser.add_argument(
        "--address", metavar="HOST", help="ask this address instead of the listen address"
    )
    parser.add_argument("--timeout", type=float, default=2.0, metavar="S", help="default 2")
    ns = parser.parse_args(argv)
    if ns.component is None:
        parser.error(f"name the component (or set ${COMPONENT_ENV})")

    from dtm.cluster.health import Target, ask, local_address
    from dtm.tls import client_context

    try:
        cluster = load_config(ns.config)
        by_name = dict(cluster.components)
        if ns.component not in by_name:
            names = ", ".join(by_name)
            print(f"dtm health: no component {ns.component!r} (have: {names})", file=sys.stderr)
            return USAGE_EXIT
        cfg = by_name[ns.component]
        others = ("balancer", "handler", "sync", "view")
        kind = ns.component if ns.component in others else "node"
        # With client certificates required, the probe shows the component's own certificate.
        tls = client_context(cluster, ns.component) if cluster.tls is not None else None
    except DtmError as err:
        print(f"dtm health: {err.name}: {err.message}", file=sys.stderr)
        return err.exit_code
    host = ns.address or local_address(cfg.bind_host)
    target = Target(host, cfg.port, kind, ns.component, tls, server_name=cfg.host)
    ok, why = ask(target, timeout=ns.timeout)
    print(f"{ns.component} at {host}:{cfg.port}: {'healthy' if ok else 'unhealthy: ' + why}")
    return 0 if ok else 1
