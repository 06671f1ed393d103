"""The edge's pure parts: quoting untrusted log values, the rate-limited traceback, the Host
allow-list, loopback detection and the listen refusal."""

from __future__ import annotations

import logging

import pytest

from dtm import httpkit
from dtm.auth import Credential
from dtm.edge import check_listen
from dtm.errors import ErrSyntaxInvalidArgs
from dtm.hosts import host_allowed, is_loopback


def test_quoted_values_cannot_forge_a_log_line() -> None:
    forged = "/v1/kv/x\n2026-01-01 00:00:00 ERROR node forged: \x1b[2J"
    out = httpkit.quoted(forged)
    assert "\n" not in out and "\x1b" not in out and out.startswith('"')


def test_a_traceback_at_most_once_per_interval_per_place(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(httpkit.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(httpkit, "_last_traceback", {})
    caplog.set_level(logging.ERROR, "dtm.http")

    def boom(place: str) -> None:
        try:
            raise ValueError("bad\nline")
        except ValueError as exc:
            httpkit.log_unexpected(place, "internal error answering %s", '"/p"', exc=exc)

    for _ in range(5):
        boom("node /v1/kv")
    boom("node /v1/changes")
    with_tb = [r for r in caplog.records if r.exc_info]
    assert len(with_tb) == 2 and len(caplog.records) == 6
    assert all("\n" not in r.getMessage() for r in caplog.records if not r.exc_info)
    now[0] += httpkit.TRACEBACK_EVERY_S
    boom("node /v1/kv")
    assert caplog.records[-1].exc_info


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        (None, True),
        ("localhost", True),
        ("LocalHost:7400", True),
        ("127.0.0.1", True),
        ("127.0.0.1:1", True),
        ("[::1]", True),
        ("[::1]:80", True),
        ("evil.example", False),
        ("localhost.evil.example", False),
        ("127.0.0.1.nip.io", False),
        ("127.0.0.1:80:80", False),
        ("127.0.0.1:", False),
        ("[::1]x", False),
        ("[::2]", False),
        ("", False),
    ],
)
def test_host_allow_list(host: str | None, ok: bool) -> None:
    assert host_allowed(host) is ok


def test_loopback_addresses_and_the_listen_refusal() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1") and not is_loopback("")
    check_listen("127.0.0.1", 7411, None)
    check_listen("0.0.0.0", 7411, Credential(("x" * 32,)))
    with pytest.raises(ErrSyntaxInvalidArgs, match="refusing to listen"):
        check_listen("0.0.0.0", 7411, None)
    with pytest.raises(ErrSyntaxInvalidArgs, match="bad port"):
        check_listen("127.0.0.1", 0, None)
