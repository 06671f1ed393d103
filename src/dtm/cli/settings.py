"""Where the CLI finds the request handler, and how long it waits for it.

Rule: the handler URLs are the first of ``--url``, ``$TODO_URL``, ``url`` in the config file
(``$XDG_CONFIG_HOME/dtm/config.toml``), and ``http://127.0.0.1:7400``; each may list several
handlers, comma-separated (the file's ``url`` also as a TOML list), which the CLI fails over
between (dtm.cli.client); the config file is read only when it exists, and an unknown key, a
bad value or bad TOML in it is ErrSyntaxInvalidArgs naming the file (a bad URL is named too).

The user token is the first of ``--token``, ``$TODO_TOKEN``, ``token`` (or the file named by
``token_file``) in the config file, and the file ``$XDG_CONFIG_HOME/dtm/local.token`` that
`dtm cluster up` keeps for the local cluster; with none, requests go without one (401).

    # ~/.config/dtm/config.toml
    url = "http://127.0.0.1:7400"   # the request handler; several: "http://a:7400,http://b:7400"
                                     # or a list: ["http://a:7400", "http://b:7400"]
    timeout = 15                     # seconds one command waits for an answer
    token = "dtmu_…"                 # or: token_file = "~/secrets/dtm.token"
    ca_file = "~/dtm/ca.pem"         # the CA of an https:// handler (else $TODO_CA_FILE)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import msgspec

from dtm.cli.transport import BaseUrl, check_urls, parse_urls
from dtm.errors import ErrSyntaxInvalidArgs

DEFAULT_URL = "http://127.0.0.1:7400"
DEFAULT_TIMEOUT = 15.0
URL_ENV = "TODO_URL"
TOKEN_ENV = "TODO_TOKEN"
CA_FILE_ENV = "TODO_CA_FILE"
LOCAL_TOKEN_FILE = "local.token"  # in the CLI's config folder, written by `dtm cluster up`


class ClientConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The CLI's config file."""

    url: str | list[str] | None = None
    timeout: float | None = None
    token: str | None = None
    token_file: str | None = None
    ca_file: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    urls: tuple[BaseUrl, ...]  # one or more request handlers, in the order given
    source: str  # where the URLs came from, for messages: "--url", "TODO_URL", a path, "default"
    timeout: float

    @property
    def url(self) -> BaseUrl:
        """The first handler URL."""
        return self.urls[0]


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
        raise ErrSyntaxInvalidArgs(
            f"{where}: {exc} (known keys: url, timeout, token, token_file, ca_file)"
        ) from None
    if cfg.timeout is not None and not 0 < cfg.timeout <= 3600:
        raise ErrSyntaxInvalidArgs(f"{where}: timeout must be between 0 and 3600 seconds")
    if cfg.token is not None and cfg.token_file is not None:
        raise ErrSyntaxInvalidArgs(f"{where}: give token or token_file, not both")
    return cfg


def resolve(flag_url: str | None, env: Mapping[str, str], cfg: ClientConfig | None) -> Settings:
    """Apply the precedence rule (pure: the caller reads the environment and the file)."""
    found = _resolve_url(flag_url, env, cfg)
    if not any(u.tls for u in found.urls):
        return found
    ca = env.get(CA_FILE_ENV, "") or (cfg.ca_file if cfg is not None and cfg.ca_file else "")
    ca = str(Path(ca).expanduser()) if ca else ""
    urls = tuple(replace(u, ca_file=ca) if u.tls else u for u in found.urls)
    return Settings(urls, found.source, found.timeout)


def _resolve_url(
    flag_url: str | None, env: Mapping[str, str], cfg: ClientConfig | None
) -> Settings:
    timeout = DEFAULT_TIMEOUT if cfg is None or cfg.timeout is None else cfg.timeout
    if flag_url is not None:
        return Settings(parse_urls(flag_url, "--url"), "--url", timeout)
    env_url = env.get(URL_ENV, "")
    if env_url:
        return Settings(parse_urls(env_url, URL_ENV), URL_ENV, timeout)
    if cfg is not None and cfg.url is not None:
        where = "the config file's url"
        if isinstance(cfg.url, str):
            return Settings(parse_urls(cfg.url, where), "config file", timeout)
        return Settings(check_urls(cfg.url, where), "config file", timeout)
    return Settings(parse_urls(DEFAULT_URL), "default", timeout)


@dataclass(frozen=True, slots=True)
class TokenSource:
    """Where the token comes from: given as text, or in a file to read."""

    source: str  # for messages: "--token", "TODO_TOKEN", the config file's path, a token file
    token: str | None = None
    file: Path | None = None


def token_source(
    flag: str | None, env: Mapping[str, str], cfg: ClientConfig | None, config_dir: Path
) -> TokenSource | None:
    """Which token to send (pure: the caller reads the file it names)."""
    if flag is not None:
        return TokenSource("--token", token=flag)
    if env.get(TOKEN_ENV, "").strip():
        return TokenSource(TOKEN_ENV, token=env[TOKEN_ENV])
    if cfg is not None and cfg.token is not None:
        return TokenSource(str(config_dir / "config.toml"), token=cfg.token)
    if cfg is not None and cfg.token_file is not None:
        path = Path(cfg.token_file).expanduser()
        path = path if path.is_absolute() else config_dir / path
        return TokenSource(str(path), file=path)
    local = config_dir / LOCAL_TOKEN_FILE
    return TokenSource(str(local), file=local)


def read_token(src: TokenSource | None) -> str | None:
    """The token ``src`` names (its file's first line); None if the local token file is absent."""
    if src is None:
        return None
    if src.file is None:
        token = (src.token or "").strip()
    else:
        try:
            token = src.file.read_text(encoding="utf-8").strip().splitlines()[0].strip()
        except FileNotFoundError:
            if src.file.name == LOCAL_TOKEN_FILE:
                return None
            raise ErrSyntaxInvalidArgs(f"no token file at {src.file}") from None
        except (OSError, UnicodeDecodeError, IndexError) as exc:
            raise ErrSyntaxInvalidArgs(f"cannot read a token from {src.file}: {exc}") from None
    if not token or not token.isascii() or not token.isprintable() or " " in token:
        raise ErrSyntaxInvalidArgs(f"the token from {src.source} is not a token (dtmu_…)")
    return token
