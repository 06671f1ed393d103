"""`dtm user add|list|remove`: who may use the task API of a cluster.

    dtm user add NAME [--replace] [--config run/cluster.toml]   prints NAME's new token, once
    dtm user list [--config ...]                                 the users and when they were added
    dtm user remove NAME [--config ...]                          NAME's token stops working

They edit the users file the cluster config names (``[handler] users_file``, default
``users.json`` next to the config); the request handler picks a change up within a second or two,
no restart. Only a token's SHA-256 is stored, so a lost token cannot be shown again: give the
user a new one with ``add NAME --replace``.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from dtm.config import load_config
from dtm.core import users
from dtm.errors import DtmError, ErrNoDataFound
from dtm.user import store

DEFAULT_CONFIG = "run/cluster.toml"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dtm user",
        description="Manage the users of a cluster's task API (each user has a token).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.add_argument(
            "--config",
            default=DEFAULT_CONFIG,
            help=f"the cluster TOML file (default: {DEFAULT_CONFIG}, the local cluster's)",
        )
        return sp

    a = add("add", "create a user and print its new token (shown only this once)")
    a.add_argument("name", help="1-32 characters of a-z 0-9 _ - starting with a letter or digit")
    a.add_argument("--replace", action="store_true", help="give an existing user a new token")
    add("list", "list the users")
    r = add("remove", "remove a user: its token stops working")
    r.add_argument("name")
    return p


def users_path(config: str) -> Path:
    return load_config(config).users_path


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        path = users_path(args.config)
        if args.command == "add":
            token = users.new_token(secrets.token_bytes(users.TOKEN_BYTES))
            store.add_user(path, args.name, token, time.time_ns() // 1_000_000, args.replace)
            print(token, flush=True)
            print(
                f"user {args.name!r} {'has a new token' if args.replace else 'added'} "
                f"(in {path}; the handler accepts it within a second or two); the token above is "
                "shown only once. To use it:\n"
                f'  export TODO_TOKEN=<token>     or put  token = "<token>"  in '
                "~/.config/dtm/config.toml",
                file=sys.stderr,
            )
            return 0
        if args.command == "list":
            found = store.read_users(path).users
            if not found:
                print(f"no users in {path}", file=sys.stderr)
            for name, entry in sorted(found.items()):
                when = datetime.fromtimestamp(entry.created_ms / 1000, UTC)
                print(f"{name}\tadded {when:%Y-%m-%d %H:%M:%S} UTC")
            return 0
        if args.command == "remove":
            if not store.remove_user(path, args.name):
                raise ErrNoDataFound(f"no user {args.name!r} in {path}")
            print(f"removed user {args.name!r}; its token stops working within a few seconds")
            return 0
    except DtmError as err:
        print(f"dtm user {args.command}: {err.name}: {err.message}", file=sys.stderr)
        return err.exit_code
    except OSError as exc:
        print(f"dtm user {args.command}: ErrUnavailable: {exc}", file=sys.stderr)
        return 6
    return 2
