"""The CLI's https handler URLs and where it finds the CA that signs them."""

from __future__ import annotations

import pytest

from dtm.cli.settings import ClientConfig, parse_config, resolve
from dtm.cli.transport import parse_url
from dtm.errors import ErrSyntaxInvalidArgs


def test_an_https_url_is_tls_on_port_443_by_default() -> None:
    u = parse_url("https://Handler.example/dtm")
    assert (u.host, u.port, u.path, u.tls) == ("handler.example", 443, "/dtm", True)
    assert str(u) == "https://handler.example:443/dtm"
    assert not parse_url("http://127.0.0.1:7400").tls
    with pytest.raises(ErrSyntaxInvalidArgs, match="https://"):
        parse_url("ftp://x")


def test_the_ca_file_comes_from_the_environment_then_the_config_file() -> None:
    cfg = ClientConfig(url="https://h:7400", ca_file="/etc/dtm/ca.pem")
    assert resolve(None, {}, cfg).url.ca_file == "/etc/dtm/ca.pem"
    assert resolve(None, {"TODO_CA_FILE": "/tmp/ca.pem"}, cfg).url.ca_file == "/tmp/ca.pem"
    # A plain http URL ignores it: no TLS, nothing to trust.
    assert resolve("http://h:7400", {"TODO_CA_FILE": "/tmp/ca.pem"}, cfg).url.ca_file == ""
    assert parse_config(b'ca_file = "~/ca.pem"\n', "f").ca_file == "~/ca.pem"
