"""TLS contexts for every hop, from the cluster config's optional ``[tls]`` section.

Rule: without ``[tls]`` every function here answers None (plain HTTP); with it, a component
serves with its own ``<cert_dir>/<name>.pem`` and ``.key`` (requiring a client certificate
signed by the CA when ``client_certs`` is on), and dials out trusting only the CA and showing
that same certificate. TLS 1.2 or newer; a key file others may read is refused.
"""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

from dtm.config import ClusterConfig, TlsSection
from dtm.errors import ErrSyntaxInvalidArgs

# The certificate of an operator's tools (`todo cluster status --config`): a client, not a server.
OPERATOR = "operator"


def _section(cfg: ClusterConfig) -> TlsSection | None:
    return cfg.tls


def ca_path(cfg: ClusterConfig, tls: TlsSection) -> Path:
    return Path(cfg.base_dir) / tls.ca_file


def cert_paths(cfg: ClusterConfig, tls: TlsSection, name: str) -> tuple[Path, Path]:
    """The certificate and key files of component ``name``."""
    d = Path(cfg.base_dir) / tls.cert_dir
    return d / f"{name}.pem", d / f"{name}.key"


def check_private_key(path: Path) -> None:
    """Refuse a key file that is missing or that group or others may read or write."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise ErrSyntaxInvalidArgs(f"cannot read the TLS key {str(path)!r}: {exc}") from None
    if mode & 0o077:
        raise ErrSyntaxInvalidArgs(
            f"the TLS key {str(path)!r} is readable by others (mode {mode:o}); "
            f"make it private: chmod 600 {path}"
        )


def _load(ctx: ssl.SSLContext, cfg: ClusterConfig, tls: TlsSection, name: str) -> None:
    cert, key = cert_paths(cfg, tls, name)
    check_private_key(key)
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        msg = f"cannot load the TLS certificate of {name} ({cert}, {key}): {exc}"
        raise ErrSyntaxInvalidArgs(msg) from None


def _trust(ctx: ssl.SSLContext, ca: Path) -> None:
    try:
        ctx.load_verify_locations(cafile=str(ca))
    except (OSError, ssl.SSLError) as exc:
        raise ErrSyntaxInvalidArgs(f"cannot load the TLS CA file {str(ca)!r}: {exc}") from None


def server_context(cfg: ClusterConfig, name: str) -> ssl.SSLContext | None:
    """What component ``name`` serves with; None without ``[tls]``."""
    tls = _section(cfg)
    if tls is None:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load(ctx, cfg, tls, name)
    if tls.client_certs and name != "handler":  # the handler's public clients have no cert
        ctx.verify_mode = ssl.CERT_REQUIRED
        _trust(ctx, ca_path(cfg, tls))
    return ctx


def client_context(cfg: ClusterConfig, name: str | None) -> ssl.SSLContext | None:
    """What component ``name`` (or, for None, a tool with no certificate) dials out with."""
    tls = _section(cfg)
    if tls is None:
        return None
    ctx = trusting(ca_path(cfg, tls))
    if name is not None:
        _load(ctx, cfg, tls, name)
    return ctx


def trusting(ca: Path) -> ssl.SSLContext:
    """A client context that trusts only the CA in ``ca`` and checks host names."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _trust(ctx, ca)
    return ctx
