"""`dtm node backup|restore --name NAME FILE`: copy a node's database out while it serves, or put
a copy back while it is stopped.

Rule: a backup is SQLite's online backup of the live database (consistent; the node keeps
serving); a restore is refused while the node answers its health check or when the copy is
another node's, and it gives the copy a NEW epoch before renaming it into place (old -wal/-shm
removed, fsynced), so the sync takes the restored node for a new one and resyncs it in full both
ways: its cursors into and out of the old epoch would skip what the copy lacks.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path

from dtm.config import ClusterConfig, add_config_flag, load_config
from dtm.errors import DtmError, ErrSyntaxInvalidArgs, ErrUnavailable

DB_SUFFIXES = ("", "-wal", "-shm")


def _copy(src: Path, dst: Path) -> None:
    """SQLite's online backup of ``src`` (which may be in use) into a new private ``dst``."""
    tmp = dst.with_name(dst.name + ".part")
    tmp.unlink(missing_ok=True)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    source = sqlite3.connect(src)  # read only, but a reader of a WAL database needs its -shm
    target = sqlite3.connect(tmp)
    try:
        source.backup(target)
        target.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
    finally:
        target.close()
        source.close()
    _fsync(tmp)
    os.replace(tmp, dst)
    _fsync(dst.parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _owner_and_epoch(path: Path) -> tuple[str, str]:
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT node, epoch FROM meta WHERE id = 0").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise ErrSyntaxInvalidArgs(f"{str(path)!r} is not a node database: {exc}") from None
    if row is None:
        raise ErrSyntaxInvalidArgs(f"{str(path)!r} is not a node database (no meta row)")
    return str(row[0]), str(row[1])


def backup(cluster: ClusterConfig, name: str, dest: Path) -> str:
    """Copy node ``name``'s database to ``dest``; a line saying what was copied."""
    db = cluster.data_dir / f"{cluster.node_named(name).name}.db"
    if not db.exists():
        raise ErrSyntaxInvalidArgs(f"node {name} has no database at {str(db)!r}")
    try:
        _copy(db, dest)
    except (sqlite3.Error, OSError) as exc:
        raise ErrUnavailable(f"cannot back up {str(db)!r} to {str(dest)!r}: {exc}") from None
    _, epoch = _owner_and_epoch(dest)
    return f"node {name} (epoch {epoch}) backed up to {dest}"


def restore(cluster: ClusterConfig, name: str, src: Path, epoch: str, running: bool) -> str:
    """Put the copy ``src`` in place of node ``name``'s database, with the new ``epoch``."""
    cfg = cluster.node_named(name)
    if running:
        raise ErrUnavailable(f"node {name} is running: stop it before restoring its database")
    owner, old_epoch = _owner_and_epoch(src)
    if owner != cfg.name:
        raise ErrSyntaxInvalidArgs(f"{str(src)!r} is node {owner}'s database, not {name}'s")
    db = cluster.data_dir / f"{cfg.name}.db"
    staged = db.with_name(db.name + ".restore")
    try:
        os.makedirs(db.parent, mode=0o700, exist_ok=True)
        _copy(src, staged)
        conn = sqlite3.connect(staged)
        try:
            with conn:
                conn.execute("UPDATE meta SET epoch = ? WHERE id = 0", (epoch,))
        finally:
            conn.close()
        _fsync(staged)
        for suffix in DB_SUFFIXES[1:]:  # the old database's log must not replay into the copy
            db.with_name(db.name + suffix).unlink(missing_ok=True)
        os.replace(staged, db)
        _fsync(db.parent)
    except (sqlite3.Error, OSError) as exc:
        raise ErrUnavailable(f"cannot restore {str(src)!r} as {str(db)!r}: {exc}") from None
    return f"node {name} restored from {src}: epoch {old_epoch} -> {epoch} (the sync resyncs it)"


def _answers(cluster: ClusterConfig, name: str) -> bool:
    from dtm.cluster.health import Target, ask, local_address
    from dtm.tls import client_context

    cfg = cluster.node_named(name)
    tls = client_context(cluster, name) if cluster.tls is not None else None
    target = Target(local_address(cfg.bind_host), cfg.port, "node", name, tls, cfg.host)
    return ask(target, timeout=1.0)[0]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="dtm node", description="Back up a running node's database, or restore a stopped one."
    )
    parser.add_argument("command", choices=("backup", "restore"))
    add_config_flag(parser)
    parser.add_argument("--name", required=True, help="the node's name in the config")
    parser.add_argument("file", type=Path, help="the backup file to write (backup) or read")
    ns = parser.parse_args(argv)
    from dtm.node.main import new_epoch

    try:
        os.umask(0o077)
        cluster = load_config(ns.config)
        if ns.command == "backup":
            print(backup(cluster, ns.name, ns.file))
        else:
            running = _answers(cluster, ns.name)
            print(restore(cluster, ns.name, ns.file, new_epoch(), running))
    except DtmError as err:
        print(f"dtm node {ns.command}: {err.name}: {err.message}", file=sys.stderr)
        return err.exit_code
    return 0
