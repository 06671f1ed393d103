"""The users file: who may use the task API, each user known by a token's hash.

Rule: the file is JSON ``{"users": {NAME: {"token_sha256": HEX, "created_ms": MS}}}``, mode 0600,
replaced atomically (temporary file, fsync, rename, fsync the folder) under an exclusive lock so
two `dtm user` commands never lose each other's change; a token itself is never stored. `dtm
user` writes it and the request handler reads it, so its format lives here, next to both.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec

from dtm.core import users
from dtm.errors import DtmError, ErrSyntaxInvalidArgs
from dtm.files import write_private

MAX_USERS_BYTES = 4 * 1024 * 1024


class UserEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    token_sha256: str
    created_ms: int = 0


class UsersFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    users: dict[str, UserEntry] = {}


def parse_users(data: bytes, where: str) -> UsersFile:
    """The users file's bytes, checked: every name and hash well-formed."""
    try:
        parsed = msgspec.json.decode(data, type=UsersFile)
    except msgspec.DecodeError as exc:
        raise ErrSyntaxInvalidArgs(f"the users file {where} is malformed: {exc}") from None
    for name, entry in parsed.users.items():
        try:
            users.check_user_name(name)
        except DtmError as exc:
            raise ErrSyntaxInvalidArgs(f"the users file {where}: {exc.message}") from None
        if not users.is_token_hash(entry.token_sha256):
            raise ErrSyntaxInvalidArgs(
                f"the users file {where}: user {name!r} has no valid token_sha256"
            )
    return parsed


def read_users(path: Path) -> UsersFile:
    """The users file at ``path``; a missing file is no users."""
    try:
        with open(path, "rb") as f:
            mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
            data = f.read(MAX_USERS_BYTES + 1)
    except FileNotFoundError:
        return UsersFile()
    except OSError as exc:
        raise ErrSyntaxInvalidArgs(f"cannot read the users file {path}: {exc.strerror}") from None
    if mode & 0o077:  # whoever may write it may add a user
        raise ErrSyntaxInvalidArgs(
            f"the users file {path} is open to others (mode {mode:o}); make it private: "
            f"chmod 600 {path}"
        )
    if len(data) > MAX_USERS_BYTES:
        raise ErrSyntaxInvalidArgs(f"the users file {path} is over {MAX_USERS_BYTES} bytes")
    return parse_users(data, str(path))


def encode_users(content: UsersFile) -> bytes:
    ordered = UsersFile(dict(sorted(content.users.items())))
    return msgspec.json.format(msgspec.json.encode(ordered), indent=2) + b"\n"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def change_users(path: Path, change: Callable[[dict[str, UserEntry]], None]) -> None:
    """Read the file, let ``change`` edit its users in place, and write it back (if changed)."""
    with _locked(path):
        current = read_users(path)
        edited = dict(current.users)
        change(edited)
        if edited != current.users or not path.exists():
            write_private(path, encode_users(UsersFile(edited)))


def add_user(path: Path, name: str, token: str, now_ms: int, replace: bool = False) -> None:
    """Give ``name`` the token ``token`` (only its hash is written); an existing user is an
    error unless ``replace``."""
    users.check_user_name(name)

    def change(found: dict[str, UserEntry]) -> None:
        if name in found and not replace:
            raise ErrSyntaxInvalidArgs(
                f"user {name!r} exists already (remove it first, or use --replace for a new token)"
            )
        found[name] = UserEntry(users.token_hash(token), now_ms)

    change_users(path, change)


def remove_user(path: Path, name: str) -> bool:
    """Remove ``name``; False if there was no such user."""
    removed = False

    def change(found: dict[str, UserEntry]) -> None:
        nonlocal removed
        removed = found.pop(name, None) is not None

    change_users(path, change)
    return removed
