"""Where the CLI finds the request handler, and how long it waits for it.

Rule: the handler URL is the first of ``--url``, ``$TODO_URL``, ``url`` in the config file
(``$XDG_CONFIG_HOME/dtm/config.toml``), and ``http://127.0.0.1:7400``; the config file is read
only when it exists, and an unknown key, a bad value or bad TOML in it is ErrSyntaxInvalidArgs
naming the file.

    # ~/.config/dtm/config.toml
    url = "http://127.0.0.1:7400"   # the request handler
    timeout = 15                     # seconds one command waits for an answer
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import msgspec

from dtm.cli.transport import BaseUrl, parse_url
from dtm.errors import ErrSyntaxInvalidArgs

DEFAULT_URL = "http://127.0.0.1:7400"
DEFAULT_TIMEOUT = 15.0
URL_ENV = "TODO_URL"


class ClientConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The CLI's config file."""

    url: str | None = None
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    url: BaseUrl
    source: str  # where the URL came from, for messages: "--url", "TODO_URL", a path, "default"
    timeout: float


def read_config(path: Path) -> ClientConfig | None:
    """The config file at ``path``, or None if there is none."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ErrSyntaxInvalidArgs(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_config(data, str(path))


def parse_config(data: bytes, where: str) -> ClientConfig:
    """Parse the config file's bytes; every problem names ``where``."""
    import tomllib

    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ErrSyntaxInvalidArgs(f"{where} is not valid TOML: {exc}") from None
    try:
        cfg = msgspec.convert(raw, ClientConfig)
    except msgspec.ValidationError as exc:
        raise ErrSyntaxInvalidArgs(f"{where}: {exc} (known keys: url, timeout)") from None
    if cfg.timeout is not None and not 0 < cfg.timeout <= 3600:
        raise ErrSyntaxInvalidArgs(f"{where}: timeout must be between 0 and 3600 seconds")
    return cfg


def resolve(flag_url: str | None, env: Mapping[str, str], cfg: ClientConfig | None) -> Settings:
    """Apply the precedence rule (pure: the caller reads the environment and the file)."""
    timeout = DEFAULT_TIMEOUT if cfg is None or cfg.timeout is None else cfg.timeout
    if flag_url is not None:
        return Settings(parse_url(flag_url, "--url"), "--url", timeout)
    env_url = env.get(URL_ENV, "")
    if env_url:
        return Settings(parse_url(env_url, URL_ENV), URL_ENV, timeout)
    if cfg is not None and cfg.url is not None:
        return Settings(parse_url(cfg.url, "the config file's url"), "config file", timeout)
    return Settings(parse_url(DEFAULT_URL), "default", timeout)
