"""Which user a request is from: its ``Authorization: Bearer <token>`` against the users file.

Rule: a request names user U iff its token's SHA-256 equals U's stored hash (compared in constant
time); the users file is re-checked (stat) at most once a second and read again when its mtime,
size or inode changed, so an added or removed user counts within about a second, no restart. A
file that went missing means no users; one that became unreadable or malformed keeps the last
good list (logged once per change). A token is never logged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from dtm.auth import bearer_token
from dtm.core import users
from dtm.errors import DtmError, ErrUnauthorized
from dtm.user import store

log = logging.getLogger(__name__)

RECHECK_S = 1.0
# A stat result that says "the same file, unchanged": (inode, size, mtime in ns).
Stamp = tuple[int, int, int] | None


def _stamp(path: Path) -> Stamp:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class UserDirectory:
    """The users of one users file, kept current."""

    def __init__(self, path: Path, clock: Callable[[], float]) -> None:
        self.path = path
        self.clock = clock
        self._pairs: tuple[tuple[str, str], ...] = ()
        self._stamp: Stamp = None
        self._checked = float("-inf")
        self._loaded_once = False
        self.refresh(force=True)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self._pairs)

    def refresh(self, force: bool = False) -> None:
        """Re-read the file if it changed (looked at no more than once per RECHECK_S)."""
        now = self.clock()
        if not force and now - self._checked < RECHECK_S:
            return
        self._checked = now
        stamp = _stamp(self.path)
        if self._loaded_once and stamp == self._stamp:
            return
        self._stamp = stamp
        if stamp is None:
            if self._pairs or not self._loaded_once:
                log.warning("no users file at %s: every task request is refused", self.path)
            self._pairs = ()
            self._loaded_once = True
            return
        try:
            content = store.read_users(self.path)
        except DtmError as err:
            if not self._loaded_once:
                raise
            log.error("%s; keeping the %d user(s) read before", err.message, len(self._pairs))
            return
        self._pairs = tuple((n, e.token_sha256) for n, e in sorted(content.users.items()))
        self._loaded_once = True
        log.info("users file %s: %d user(s)", self.path, len(self._pairs))

    def user_of(self, header: str | None) -> str:
        """The user the ``Authorization`` value names, or ErrUnauthorized."""
        self.refresh()
        token = bearer_token(header)
        user = None if token is None else users.who_holds(token, self._pairs)
        if user is None:
            why = "no token was sent" if header is None else "the token is not valid here"
            raise ErrUnauthorized(
                f"{why}: send 'Authorization: Bearer <token>' with a user's token "
                "(an administrator makes one with `dtm user add NAME`)"
            )
        return user
