"""`dtm cluster up|down|rm|status|logs`: a local cluster under supervisord, state in ./run.

dtm cluster up [--nodes N] [--dir run] [--components store1,balancer,...] [--timeout S]
dtm cluster down [--dir run]          stop everything, keep data
dtm cluster rm [--dir run]            stop everything, delete data and configuration
dtm cluster status [--dir run]        state, pid, URL and health of every component
dtm cluster url [COMPONENT] [--dir run]   a component's address (default: the handler)
dtm cluster logs COMPONENT [-f] [-n LINES] [--dir run]
dtm cluster certs --config FILE [--hosts H,...]   a CA and every component's TLS certificate
dtm cluster stop|start|restart|pause|resume COMPONENT   fault levers (see dtm.cluster.levers)
dtm cluster wipe NODE | skew NODE OFFSET_MS | partition A B | heal | view
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from dtm.cluster import commands, levers
from dtm.cluster.layout import RunDir, venv_python
from dtm.errors import DtmError

DEFAULT_DIR = "run"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dtm cluster", description="Run a local dtm cluster under supervisord."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.add_argument("--dir", default=DEFAULT_DIR, help="run directory (default: ./run)")
        return sp

    up = add("up", "start what is not running and wait until every component is healthy")
    up.add_argument("--nodes", type=int, default=None, help="number of data nodes (first up: 2)")
    up.add_argument(
        "--components",
        action="append",
        default=None,
        help="only these components (comma-separated names, or 'nodes'); default: all available",
    )
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for health")
    up.add_argument(
        "--base-port",
        type=int,
        default=None,
        help="when the cluster file is made: handler on PORT, balancer PORT+1, data nodes "
        "PORT+11.., sync PORT+20 (default 7400)",
    )
    add("down", "stop every component and supervisord; keep data")
    add("rm", "stop everything and delete the cluster's data and configuration")
    add("status", "show every component's state, pid, URL and health")
    u = add("url", "print a component's address from the cluster file")
    u.add_argument("component", nargs="?", default="handler", help="default: handler")
    lg = add("logs", "print the last lines of a component's log")
    lg.add_argument("component", help="store1, store2, balancer (loadbalancer), handler, sync ...")
    lg.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    lg.add_argument("-n", "--lines", type=int, default=200, help="lines to print (default 200)")
    _lever_parsers(add)
    certs = sub.add_parser(
        "certs",
        help="make a CA and a TLS certificate for every component of a cluster config",
        description="Make a small CA (kept if it exists) and a TLS certificate and key for every "
        "component of the config, where its [tls] section says.",
    )
    certs.add_argument("--config", required=True, help="the cluster TOML file, with [tls]")
    certs.add_argument(
        "--hosts",
        action="append",
        default=[],
        help="more names or addresses every certificate is valid for (comma-separated)",
    )
    return p


def _lever_parsers(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    for name, help_ in levers.ONE_COMPONENT.items():
        add(name, help_).add_argument("component", help="store1, store2, balancer, handler, sync")
    sk = add("skew", "run a data node's clock this many ms off (0 undoes it); restarts it")
    sk.add_argument("component", help="store1, store2 ...")
    sk.add_argument("offset", help="milliseconds: +2000, -1500 (or -- -1500), 0")
    pa = add("partition", "cut the network between two components (where there is one)")
    pa.add_argument("a")
    pa.add_argument("b")
    add("heal", "undo `partition`")
    add("view", "print the live view's address with the cluster secret to log in (private)")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "certs":
        return _certs(args)
    run = RunDir.at(args.dir)
    python = venv_python()
    try:
        if args.command == "up":
            opts = commands.UpOptions(args.nodes, args.components, args.timeout, args.base_port)
            return commands.up(run, python, opts)
        if args.command == "down":
            return commands.down(run, python)
        if args.command == "rm":
            return commands.rm(run, python)
        if args.command == "status":
            return commands.status(run, python)
        if args.command == "url":
            return commands.url(run, args.component)
        if args.command == "logs":
            return commands.logs(run, args.component, args.follow, args.lines)
        return levers.run(run, python, args)
    except DtmError as exc:
        print(f"dtm cluster {args.command}: {exc.name}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 2


def _certs(args: argparse.Namespace) -> int:
    from dtm.cluster import certs  # only this command needs the cryptography package

    try:
        return certs.run(args)
    except DtmError as exc:
        print(f"dtm cluster certs: {exc.name}: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
