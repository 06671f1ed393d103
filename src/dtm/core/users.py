"""Users: their names, their tokens' hashes, and the key range each one's tasks live in.

Rule: a user name is 1-32 characters of ``[a-z0-9_-]`` starting with a letter or digit; user
``u``'s task ``t`` is stored under the key ``"u.t"``, so a user's keys are exactly the keys that
start with ``"u."`` (a name holds no ``.``, so no user's range overlaps another's); a token is
known by its SHA-256 hex digest only.

Pure: the caller passes the random bytes a new token is made of.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable

from dtm.core import tasks
from dtm.errors import ErrSyntaxInvalidArgs

MAX_NAME = 32
TOKEN_BYTES = 32  # 256 random bits
TOKEN_PREFIX = "dtmu_"
SEPARATOR = "."
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_HEX = re.compile(r"[0-9a-f]{64}")


def is_user_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def check_user_name(name: str) -> str:
    """``name``, or ErrSyntaxInvalidArgs naming the rule."""
    if not is_user_name(name):
        shown = name if len(name) <= 40 else name[:40] + "…"
        raise ErrSyntaxInvalidArgs(
            f"invalid user name {shown!r}: use 1-{MAX_NAME} characters of a-z 0-9 _ - "
            "starting with a letter or digit"
        )
    return name


# ---------------------------------------------------------------- the key namespace


def key_prefix(user: str) -> str:
    """Every key of ``user``'s tasks starts with this, and no other user's key does."""
    return check_user_name(user) + SEPARATOR


def task_key(user: str, task_id: str) -> str:
    """The key ``user``'s task ``task_id`` is stored under."""
    return key_prefix(user) + task_id


def task_id_of(user: str, key: str) -> str | None:
    """The task ID ``key`` holds if it is one of ``user``'s task keys, else None."""
    prefix = key_prefix(user)
    if not key.startswith(prefix):
        return None
    rest = key[len(prefix) :]
    return rest if tasks.is_task_id(rest) else None


def scan_after(user: str, id_prefix: str = "") -> str:
    """The key to scan after so the first key seen is ``user``'s first one whose task ID starts
    with ``id_prefix``; the scan ends at the first key outside ``key_prefix(user) + id_prefix``."""
    return tasks.scan_bound(key_prefix(user) + id_prefix)


# ---------------------------------------------------------------- tokens


def new_token(entropy: bytes) -> str:
    """A token from ``TOKEN_BYTES`` random bytes: ``dtmu_`` and 43 URL-safe characters."""
    if len(entropy) != TOKEN_BYTES:
        raise ValueError(f"a token needs {TOKEN_BYTES} random bytes, got {len(entropy)}")
    return TOKEN_PREFIX + base64.urlsafe_b64encode(entropy).decode().rstrip("=")


def token_hash(token: str) -> str:
    """What is stored of a token: its SHA-256, in lowercase hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def is_token_hash(text: str) -> bool:
    return _HEX.fullmatch(text) is not None


def who_holds(token: str, hashes: Iterable[tuple[str, str]]) -> str | None:
    """The user whose stored hash is ``token``'s, among ``(user, hash)`` pairs, or None.

    Every hash is compared in constant time and there is no early exit, so the time taken does
    not tell how much of a hash matched, nor which user it was."""
    given = token_hash(token).encode()
    found: str | None = None
    for user, stored in hashes:
        if hmac.compare_digest(given, stored.encode()) and found is None:
            found = user
    return found
