"""The local person's user on a local cluster, so `make up` then `todo add …` just works.

Rule: `dtm cluster up` makes sure user ``local`` exists and that ``<run>/local.token`` (0600)
holds a token whose hash the users file has for it (a new token only when either is missing or
they disagree); it then copies that token to ``$XDG_CONFIG_HOME/dtm/local.token`` (0600), a file
only `dtm cluster up` writes and the CLI reads last, after ``--token``, ``$TODO_TOKEN`` and the
config file's ``token``/``token_file`` — so a user's own settings always win and are never touched.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path

from dtm.config import ClusterConfig
from dtm.core import users
from dtm.files import write_private
from dtm.user import store

LOCAL_USER = "local"
TOKEN_FILE = "local.token"


def _cli_config_dir(env: Mapping[str, str]) -> Path:
    value = env.get("XDG_CONFIG_HOME", "")
    if value and os.path.isabs(value):
        return Path(value) / "dtm"
    return Path(env.get("HOME") or str(Path.home())) / ".config" / "dtm"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def ensure_local_user(cfg: ClusterConfig, run_root: Path, env: Mapping[str, str]) -> Path:
    """Make the local user and its token files current; the CLI's copy's path."""
    run_token = run_root / TOKEN_FILE
    token = _read(run_token)
    entry = store.read_users(cfg.users_path).users.get(LOCAL_USER)
    if token is None or entry is None or entry.token_sha256 != users.token_hash(token):
        token = users.new_token(secrets.token_bytes(users.TOKEN_BYTES))
        store.add_user(cfg.users_path, LOCAL_USER, token, time.time_ns() // 1_000_000, True)
        write_private(run_token, (token + "\n").encode())
    cli_copy = _cli_config_dir(env) / TOKEN_FILE
    if _read(cli_copy) != token:
        write_private(cli_copy, (token + "\n").encode())
    return cli_copy
