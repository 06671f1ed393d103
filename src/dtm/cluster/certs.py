"""`dtm cluster certs --config FILE [--hosts H,...]`: a small CA and one certificate per component.

Rule: the CA (``ca.pem``, ``ca.key``) is made once and reused; every component of the config
(store1.., balancer, handler, sync, and ``operator`` for tools) gets ``<name>.pem`` and
``<name>.key`` signed by it, valid for its configured host, ``--hosts``, ``localhost`` and
``127.0.0.1``. Keys are written 0600.
Where they go is the config's ``[tls]`` section (``cert_dir``, ``ca_file``).
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dtm.config import ClusterConfig, load_config
from dtm.errors import ErrSyntaxInvalidArgs
from dtm.tls import OPERATOR, ca_path, cert_paths

VALID_DAYS = 825
_BOTH_ENDS = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
PrivateKey = ec.EllipticCurvePrivateKey


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def _key_bytes(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dtm cluster"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for h in dict.fromkeys(hosts):  # in order, once each
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return x509.SubjectAlternativeName(names)


def _ca(ca_cert: Path, ca_key: Path, now: datetime.datetime) -> tuple[x509.Certificate, PrivateKey]:
    """The CA at these paths, made if it does not exist yet."""
    if ca_cert.exists() and ca_key.exists():
        key = serialization.load_pem_private_key(ca_key.read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ErrSyntaxInvalidArgs(f"{ca_key} is not an EC key made by dtm cluster certs")
        return x509.load_pem_x509_certificate(ca_cert.read_bytes()), key
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("dtm cluster CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS * 4))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write(ca_key, _key_bytes(key), 0o600)
    _write(ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key


def _leaf(
    name: str, hosts: list[str], ca: x509.Certificate, ca_key: PrivateKey, now: datetime.datetime
) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_san(hosts), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(_BOTH_ENDS),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_bytes(key)


def make_certs(cfg: ClusterConfig, extra_hosts: list[str]) -> list[Path]:
    """Make the CA (if missing) and every component's certificate; the certificate paths."""
    tls = cfg.tls
    if tls is None:
        raise ErrSyntaxInvalidArgs(
            "the cluster config has no [tls] section: add one (ca_file, cert_dir) first"
        )
    now = datetime.datetime.now(datetime.UTC)
    ca_cert = ca_path(cfg, tls)
    ca, ca_key = _ca(ca_cert, ca_cert.with_suffix(".key"), now)
    made = []
    wanted = [(name, listener.host) for name, listener in cfg.components]
    for name, host in [*wanted, (OPERATOR, "localhost")]:
        cert_file, key_file = cert_paths(cfg, tls, name)
        hosts = [host, *extra_hosts, "localhost", "127.0.0.1"]
        cert, key = _leaf(name, hosts, ca, ca_key, now)
        _write(key_file, key, 0o600)
        _write(cert_file, cert, 0o644)
        made.append(cert_file)
    return made


def run(ns: argparse.Namespace) -> int:
    """Make the certificates and print where each went."""
    hosts = [h.strip() for arg in ns.hosts for h in arg.split(",") if h.strip()]
    cfg = load_config(ns.config)
    for path in make_certs(cfg, hosts):
        print(path)
    return 0
