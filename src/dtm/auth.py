"""The cluster credential: which callers may use an internal endpoint.

Rule: an internal request is allowed iff its ``Authorization`` header is ``Bearer <secret>`` for
one of the cluster's secrets, compared in constant time; a process sends the first secret and
accepts every listed one, so a second secret can be rolled out before the first is retired.

The secrets come from the file named by ``[cluster] secret_file`` (one per line, ``#`` comments;
refused if anyone but its owner may read it) or from ``$DTM_CLUSTER_SECRET`` (comma-separated).
A secret is never logged: `Credential` prints as a count.
"""

from __future__ import annotations

import hmac
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from dtm.errors import ErrSyntaxInvalidArgs
from dtm.files import write_private

AUTH_HEADER: Final = "Authorization"
SECRET_ENV: Final = "DTM_CLUSTER_SECRET"
MIN_SECRET_CHARS: Final = 32
MAX_SECRETS: Final = 4
_SECRET_CHARS: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/="
)


@dataclass(frozen=True, slots=True)
class Credential:
    """The cluster's valid secrets; the first is the one this process sends."""

    secrets: tuple[str, ...] = field(repr=False)

    def __post_init__(self) -> None:
        if not 1 <= len(self.secrets) <= MAX_SECRETS:
            raise ErrSyntaxInvalidArgs(f"the cluster credential needs 1..{MAX_SECRETS} secrets")
        for s in self.secrets:
            check_secret(s)

    def __repr__(self) -> str:
        return f"Credential(<{len(self.secrets)} secret(s)>)"

    @property
    def header_value(self) -> str:
        """What this process sends in ``Authorization``."""
        return "Bearer " + self.secrets[0]

    def accepts(self, header: str | None) -> bool:
        """True iff ``header`` (the whole Authorization value) names one of the secrets."""
        token = bearer_token(header)
        if token is None:
            return False
        given = token.encode("utf-8", "replace")
        ok = False
        for s in self.secrets:  # no early exit: the time does not tell which one matched
            ok |= hmac.compare_digest(given, s.encode())
        return ok


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization`` value ``Bearer <token>`` (the scheme in any case, as
    RFC 9110 allows), else None: one parser for the cluster credential and users' tokens."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def check_secret(secret: str) -> str:
    """A secret must be long and plain (it travels in a header)."""
    if len(secret) < MIN_SECRET_CHARS or not set(secret) <= _SECRET_CHARS:
        raise ErrSyntaxInvalidArgs(
            f"a cluster secret must be at least {MIN_SECRET_CHARS} characters of "
            "A-Z a-z 0-9 - . _ ~ + / ="
        )
    return secret


def parse_secrets(text: str) -> tuple[str, ...]:
    """The secrets of a secret file's text: one per line; blank lines and ``#`` comments skipped."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return tuple(out)


def read_secret_file(path: Path) -> Credential:
    """The credential in ``path``; refused if group or others may read or write it."""
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read the cluster secret file {str(path)!r}: {exc}"
        raise ErrSyntaxInvalidArgs(msg) from None
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise ErrSyntaxInvalidArgs(
            f"the cluster secret file {str(path)!r} is readable by others "
            f"(mode {stat.S_IMODE(st.st_mode):o}); make it private: chmod 600 {path}"
        )
    found = parse_secrets(text)
    if not found:
        raise ErrSyntaxInvalidArgs(f"the cluster secret file {str(path)!r} holds no secret")
    return Credential(found)


def load_credential(secret_file: Path | None, env: Mapping[str, str]) -> Credential | None:
    """The environment's secrets if set, else the file's, else none."""
    from_env = env.get(SECRET_ENV, "").strip()
    if from_env:
        return Credential(tuple(s.strip() for s in from_env.split(",") if s.strip()))
    if secret_file is None:
        return None
    return read_secret_file(secret_file)


def new_secret() -> str:
    """A fresh secret: 256 random bits."""
    return secrets.token_urlsafe(32)


def ensure_secret_file(path: Path) -> bool:
    """Create ``path`` with a new secret, mode 0600, unless it exists; True if it was made."""
    if path.exists():
        return False
    header = "# dtm cluster secret: every component and admin tool of this cluster uses it.\n"
    write_private(path, (header + new_secret() + "\n").encode())
    return True
