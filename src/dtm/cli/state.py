"""The CLI's own files under the XDG base directories: the session state and the shell history.

Rule: the session file maps a handler URL list (`list_key`: the URLs sorted, comma-joined; one
URL is just itself) to the session token last seen there; it is replaced atomically (write a
temporary file, fsync, rename, fsync the folder) under an exclusive lock, merging with what
another `todo` process may have saved meanwhile; a malformed file is ignored with a warning,
never fatal. A list's token is loaded merged with the tokens kept for each of its URLs alone (a
file from one URL, before the list), and the handler of the list that last answered is kept
beside it, so the next command starts there.

    $XDG_STATE_HOME/dtm/session.json   (default ~/.local/state/dtm/session.json)
    $XDG_STATE_HOME/dtm/handler.json   the URL of each list that answered last
    $XDG_STATE_HOME/dtm/history        the interactive shell's history
    $XDG_CONFIG_HOME/dtm/config.toml   (default ~/.config/dtm/config.toml), read by settings.py

The session file is private to the CLI (no service reads it), so its format lives here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import msgspec

from dtm.core.session import merge_tokens
from dtm.errors import DtmError
from dtm.files import write_private
from dtm.wire import SessionToken, decode

MAX_STATE_BYTES = 1024 * 1024


class SessionFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The session file: one token per request-handler URL."""

    sessions: dict[str, SessionToken] = {}


class LastHandlers(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The handler file: per URL list, the URL that answered last."""

    last: dict[str, str] = {}


def list_key(urls: Sequence[str]) -> str:
    """The key of a handler URL list in the state files: the same for any order of the URLs."""
    return ",".join(sorted(set(urls)))


def _xdg(env: Mapping[str, str], name: str, fallback: str) -> Path:
    value = env.get(name, "")
    if value and os.path.isabs(value):  # relative values are invalid per the XDG spec
        return Path(value)
    home = env.get("HOME") or str(Path.home())
    return Path(home) / fallback


def state_dir(env: Mapping[str, str]) -> Path:
    return _xdg(env, "XDG_STATE_HOME", ".local/state") / "dtm"


def config_file(env: Mapping[str, str]) -> Path:
    return _xdg(env, "XDG_CONFIG_HOME", ".config") / "dtm" / "config.toml"


def history_file(env: Mapping[str, str]) -> Path:
    return state_dir(env) / "history"


def ensure_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


class SessionStore:
    """Load and save the session token of one handler URL list (or of one URL)."""

    def __init__(
        self, directory: Path, urls: str | Sequence[str], warn: Callable[[str], None]
    ) -> None:
        self.dir = directory
        self.path = directory / "session.json"
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        self.url = list_key(self.urls)
        self.warn = warn

    def _read(self) -> SessionFile:
        try:
            with open(self.path, "rb") as f:
                data = f.read(MAX_STATE_BYTES + 1)
        except FileNotFoundError:
            return SessionFile()
        except OSError as exc:
            self.warn(f"cannot read the session file {self.path}: {exc.strerror or exc}")
            return SessionFile()
        try:
            return decode(data, SessionFile, limit=MAX_STATE_BYTES, what="session file")
        except DtmError as exc:
            self.warn(f"ignoring the malformed session file {self.path}: {exc.message}")
            return SessionFile()

    def load(self) -> SessionToken:
        """The token saved for this URL list, merged with those of its URLs alone (empty if
        none, or if the file is unreadable)."""
        sessions = self._read().sessions
        token = sessions.get(self.url, SessionToken())
        for url in self.urls:
            alone = sessions.get(url)
            if url != self.url and alone is not None:
                token = merge_tokens(token, alone)
        return token

    def save(self, token: SessionToken) -> None:
        """Merge ``token`` into the file for this URL; problems are warnings, never errors."""
        import fcntl

        try:
            ensure_dir(self.dir)
            with open(self.dir / "session.lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                current = self._read()
                old = current.sessions.get(self.url)
                merged = token if old is None else merge_tokens(old, token)
                if merged == old:
                    return
                sessions = dict(current.sessions)
                sessions[self.url] = merged
                write_private(self.path, msgspec.json.encode(SessionFile(sessions)))
        except OSError as exc:
            self.warn(f"cannot save the session file {self.path}: {exc.strerror or exc}")

    def forget(self) -> bool:
        """Drop this list's token (and those of its URLs alone) from the file; True if there
        was one."""
        import fcntl

        ensure_dir(self.dir)
        gone = {self.url, *self.urls}
        with open(self.dir / "session.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self._read()
            if not gone & current.sessions.keys():
                return False
            sessions = {u: t for u, t in current.sessions.items() if u not in gone}
            write_private(self.path, msgspec.json.encode(SessionFile(sessions)))
            return True

    # ------------------------------------------------------------ the handler that answered

    @property
    def handler_path(self) -> Path:
        return self.dir / "handler.json"

    def _handlers(self) -> LastHandlers:
        try:
            with open(self.handler_path, "rb") as f:
                data = f.read(MAX_STATE_BYTES + 1)
            return decode(data, LastHandlers, limit=MAX_STATE_BYTES, what="handler file")
        except (OSError, DtmError):  # absent or unreadable: start from the first URL
            return LastHandlers()

    def last_handler(self) -> str | None:
        """The URL of this list that answered last (None: none known, or one URL only)."""
        if len(self.urls) < 2:
            return None
        url = self._handlers().last.get(self.url)
        return url if url in self.urls else None

    def answered(self, url: str) -> None:
        """Keep ``url`` as this list's last handler to answer; problems are warnings."""
        if len(self.urls) < 2:
            return
        import fcntl

        try:
            ensure_dir(self.dir)
            with open(self.dir / "session.lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                last = dict(self._handlers().last)
                if last.get(self.url) == url:
                    return
                last[self.url] = url
                write_private(self.handler_path, msgspec.json.encode(LastHandlers(last)))
        except OSError as exc:
            self.warn(f"cannot save {self.handler_path}: {exc.strerror or exc}")
