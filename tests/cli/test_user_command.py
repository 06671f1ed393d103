"""`dtm user add|list|remove`, the users file it writes, and the handler's view of that file."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from dtm.auth import bearer_token
from dtm.config import default_config_text
from dtm.core import users
from dtm.errors import ErrSyntaxInvalidArgs, ErrUnauthorized
from dtm.handler.users import RECHECK_S, UserDirectory
from dtm.user import store
from dtm.user.main import main as user_main


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "cluster.toml"
    text = default_config_text(1).replace("[handler]\n", '[handler]\nusers_file = "u/users.json"\n')
    path.write_text(text)
    return path


def dtm_user(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = user_main([*args, "--config", str(config)])
    out, err = capsys.readouterr()
    return code, out, err


def test_add_prints_a_token_once_and_stores_only_its_hash(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = dtm_user(config, capsys, "add", "alice")
    assert code == 0, err
    token = out.strip()
    assert token.startswith(users.TOKEN_PREFIX) and "TODO_TOKEN" in err
    path = config.parent / "u" / "users.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert token not in text
    assert json.loads(text)["users"]["alice"]["token_sha256"] == users.token_hash(token)
    # A second add of the same name is refused; --replace gives a new token.
    assert dtm_user(config, capsys, "add", "alice")[0] == 2
    code, out2, _ = dtm_user(config, capsys, "add", "alice", "--replace")
    assert code == 0 and out2.strip() != token
    assert store.read_users(path).users["alice"].token_sha256 == users.token_hash(out2.strip())


def test_list_and_remove(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("bob", "alice"):
        assert dtm_user(config, capsys, "add", name)[0] == 0
    code, out, _ = dtm_user(config, capsys, "list")
    assert code == 0 and [line.split("\t")[0] for line in out.splitlines()] == ["alice", "bob"]
    assert dtm_user(config, capsys, "remove", "bob")[0] == 0
    code, out, _ = dtm_user(config, capsys, "list")
    assert [line.split("\t")[0] for line in out.splitlines()] == ["alice"]
    code, _, err = dtm_user(config, capsys, "remove", "bob")
    assert code == 3 and "ErrNoDataFound" in err


@pytest.mark.parametrize("name", ["Bob", "a.b", "", "x" * 33])
def test_a_bad_name_is_a_syntax_error(
    config: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code, out, err = dtm_user(config, capsys, "add", name)
    assert code == 2 and out == "" and "ErrSyntaxInvalidArgs" in err


def test_a_missing_config_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = dtm_user(tmp_path / "nope.toml", capsys, "list")
    assert code == 2 and err.startswith("dtm user list: ErrSyntaxInvalidArgs")


@pytest.mark.parametrize(
    "text",
    [
        b"not json",
        b'{"users": {"Bad.Name": {"token_sha256": "' + b"0" * 64 + b'"}}}',
        b'{"users": {"bob": {"token_sha256": "short"}}}',
        b'{"users": {"bob": {"token_sha256": "' + b"0" * 64 + b'", "token": "x"}}}',
    ],
)
def test_a_malformed_users_file_is_refused(text: bytes) -> None:
    with pytest.raises(ErrSyntaxInvalidArgs, match="users file"):
        store.parse_users(text, "users.json")


# ---------------------------------------------------------------- the handler's view


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer a b", None),
        ("abc", None),
        (None, None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_the_handler_sees_added_and_removed_users_after_a_recheck(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    alice, bob = users.new_token(b"a" * 32), users.new_token(b"b" * 32)
    store.add_user(path, "alice", alice, 1)
    clock = Clock()
    directory = UserDirectory(path, clock)
    assert directory.user_of(f"Bearer {alice}") == "alice"
    with pytest.raises(ErrUnauthorized, match="no token was sent"):
        directory.user_of(None)
    with pytest.raises(ErrUnauthorized, match="not valid"):
        directory.user_of("Bearer garbage")
    store.add_user(path, "bob", bob, 2)
    store.remove_user(path, "alice")
    assert directory.user_of(f"Bearer {alice}") == "alice"  # not looked at again yet
    clock.now += RECHECK_S
    assert directory.user_of(f"Bearer {bob}") == "bob"
    with pytest.raises(ErrUnauthorized):
        directory.user_of(f"Bearer {alice}")
    # A file that turns malformed keeps the last good users; a missing one means none.
    path.write_text("{oops")
    clock.now += RECHECK_S
    assert directory.user_of(f"Bearer {bob}") == "bob"
    path.unlink()
    clock.now += RECHECK_S
    with pytest.raises(ErrUnauthorized):
        directory.user_of(f"Bearer {bob}")
    assert directory.names == ()


def test_a_malformed_users_file_stops_the_handler_at_start(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text("[]")
    path.chmod(0o600)
    with pytest.raises(ErrSyntaxInvalidArgs, match="malformed"):
        UserDirectory(path, Clock())


def test_a_users_file_others_may_write_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_bytes(b'{"users": {}}')
    path.chmod(0o600)
    assert UserDirectory(path, Clock()).names == ()
    path.chmod(0o664)  # anyone in the group could add a user of their own
    with pytest.raises(ErrSyntaxInvalidArgs, match="open to others"):
        UserDirectory(path, Clock())


def test_cluster_up_keeps_one_local_token_and_never_touches_the_users_own(
    config: Path, tmp_path: Path
) -> None:
    from dtm.config import load_config
    from dtm.user.local import ensure_local_user

    cfg = load_config(config)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path)}
    own = tmp_path / "xdg" / "dtm" / "config.toml"
    own.parent.mkdir(parents=True)
    own.write_text('token = "mine"\n')
    copy = ensure_local_user(cfg, tmp_path, env)
    token = copy.read_text().strip()
    assert (tmp_path / "local.token").read_text().strip() == token
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert store.read_users(cfg.users_path).users["local"].token_sha256 == users.token_hash(token)
    # Again: the same token (no churn); the user's own config is left alone.
    assert ensure_local_user(cfg, tmp_path, env).read_text().strip() == token
    assert own.read_text() == 'token = "mine"\n'
    # The users file lost the local user (e.g. `dtm user remove local`): a new token, both files.
    store.remove_user(cfg.users_path, "local")
    fresh = ensure_local_user(cfg, tmp_path, env).read_text().strip()
    assert fresh != token and (tmp_path / "local.token").read_text().strip() == fresh
