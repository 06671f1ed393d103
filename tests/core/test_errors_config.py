"""The error tree (names, exit codes, HTTP statuses) and the cluster config's strictness."""

from __future__ import annotations

from pathlib import Path

import pytest

from dtm import auth, errors
from dtm.config import default_config_text, parse_config
from dtm.errors import ALL_ERRORS, ErrSyntaxInvalidArgs


def test_every_error_has_a_distinct_name_and_exit_code() -> None:
    names = [e.name for e in ALL_ERRORS]
    codes = [e.exit_code for e in ALL_ERRORS if e is not errors.ErrPayloadTooLarge]
    assert len(set(names)) == len(names)
    assert len(set(codes)) == len(codes)
    assert all(e.__name__ == e.name for e in ALL_ERRORS)


@pytest.mark.parametrize("cls", ALL_ERRORS)
def test_errors_round_trip_through_the_wire(cls: type[errors.DtmError]) -> None:
    err = errors.from_wire(cls.name, "boom")
    assert type(err) is cls and err.message == "boom"


def test_the_spec_errors_keep_their_names_and_statuses() -> None:
    assert (errors.ErrSyntaxInvalidArgs.http_status, errors.ErrSyntaxInvalidArgs.exit_code) == (
        400,
        2,
    )
    assert (errors.ErrNoDataFound.http_status, errors.ErrNoDataFound.exit_code) == (404, 3)
    assert errors.ErrUnavailable.http_status == 503


def test_an_unknown_wire_error_becomes_internal_with_its_name_kept() -> None:
    err = errors.from_wire("ErrMartian", "hi")
    assert isinstance(err, errors.ErrInternal) and "ErrMartian" in err.message


def test_default_config_describes_n_nodes_on_the_documented_ports() -> None:
    cfg = parse_config(default_config_text(3))
    assert [(n.name, n.port) for n in cfg.node] == [
        ("store1", 7411),
        ("store2", 7412),
        ("store3", 7413),
    ]
    assert (cfg.handler.port, cfg.balancer.port, cfg.sync.port) == (7400, 7401, 7420)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda t: t + "\nbogus = 1\n", "unknown field `bogus`"),
        (lambda t: t.replace('name = "store2"', 'name = "store1"'), "repeat"),
        (lambda t: t.replace("port = 7412", "port = 7411"), "share one address"),
        (lambda t: t.replace("port = 7412", 'port = "x"'), "Expected `int`"),
        (lambda t: t.replace("[sync]", '[sync]\nmode = "push"'), "mode"),
        (lambda t: "[[node]\n", "not valid TOML"),
    ],
)
def test_bad_config_is_a_clear_error(mutate: object, match: str) -> None:
    with pytest.raises(ErrSyntaxInvalidArgs, match=match):
        parse_config(mutate(default_config_text(2)))  # type: ignore[operator]


def test_the_cluster_credential_accepts_exactly_its_secrets(tmp_path: Path) -> None:

    a, b = auth.new_secret(), auth.new_secret()
    cred = auth.Credential((a, b))
    assert cred.header_value == f"Bearer {a}"
    assert cred.accepts(f"Bearer {a}") and cred.accepts(f"Bearer {b}")
    for bad in (None, "", a, f"Basic {a}", f"Bearer {a}x", f"Bearer {a[:-1]}", "Bearer "):
        assert not cred.accepts(bad)
    assert a not in repr(cred)
    with pytest.raises(ErrSyntaxInvalidArgs):
        auth.Credential(("short",))


def test_a_secret_file_must_be_private(tmp_path: Path) -> None:

    path = tmp_path / "secret"
    assert auth.ensure_secret_file(path) and not auth.ensure_secret_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    cred = auth.read_secret_file(path)
    assert auth.load_credential(path, {}) == cred
    env = {auth.SECRET_ENV: f"{auth.new_secret()},{auth.new_secret()}"}
    from_env = auth.load_credential(path, env)
    assert from_env is not None and len(from_env.secrets) == 2
    path.chmod(0o644)
    with pytest.raises(ErrSyntaxInvalidArgs, match="readable by others"):
        auth.read_secret_file(path)
