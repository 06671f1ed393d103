"""`dtm <component> [options]`: run one component of the cluster in the foreground.

    dtm node --config cluster.toml --name store1
    dtm balancer --config cluster.toml
    dtm handler --config cluster.toml
    dtm sync --config cluster.toml [--interval MS]
    dtm cluster up|down|rm|status ...      (the local cluster under supervisord; see `make up`)
    dtm user add|list|remove ...           (who may use the task API; see `dtm user --help`)
    dtm health <component> --config FILE   (exit 0 if it answers its health check, else 1)

Each component lives in ``dtm.<component>.main`` and exposes ``main(argv) -> int``; the import
is lazy so one component never pays for another's modules.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys

COMPONENTS = ("node", "balancer", "handler", "sync", "view", "cluster", "user", "health")
USAGE = """\
dtm - run the parts of a dtm cluster

Usage:
  dtm cluster up|down|rm|status|logs ...  the local cluster (see `dtm cluster --help`, `make up`)
  dtm user add|list|remove ...            who may use the task API (see `dtm user --help`)
  dtm node --config FILE --name NAME      one data node, in the foreground
  dtm balancer --config FILE              the load balancer, in the foreground
  dtm handler --config FILE               the request handler, in the foreground
  dtm sync --config FILE                  the sync process, in the foreground
  dtm view --config FILE                  the live view in the browser, in the foreground
  dtm node backup|restore ...             copy a node's database out, or back in (new epoch)
  dtm health <component> --config FILE    exit 0 if it answers its health check (a probe)

The task list itself is used with `todo` (see `todo help`)."""


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM us when the process that started us dies (no orphans holding ports)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() == 1:  # the parent is already gone
        os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help") or args[0] not in COMPONENTS:
        print(
            USAGE,
            file=sys.stderr if args and args[0] not in ("-h", "--help") else sys.stdout,
        )
        return 0 if not args or args[0] in ("-h", "--help", "help") else 2
    if os.environ.get("DTM_DIE_WITH_PARENT"):
        _die_with_parent()
    module = importlib.import_module(f"dtm.{args[0]}.main")
    code: int = module.main(args[1:])
    return code


if __name__ == "__main__":
    sys.exit(main())
