"""The session file (atomic, keyed by URL, merged, tolerant) and where the handler is found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dtm.cli.settings import DEFAULT_TIMEOUT, parse_config, read_config, resolve
from dtm.cli.state import SessionStore, config_file, history_file, state_dir
from dtm.errors import ErrSyntaxInvalidArgs
from dtm.wire import SessionToken

A = "http://127.0.0.1:7400"
B = "http://10.0.0.2:9000"


def store(tmp_path: Path, url: str = A) -> tuple[SessionStore, list[str]]:
    warnings: list[str] = []
    return SessionStore(tmp_path / "dtm", url, warnings.append), warnings


def test_xdg_paths() -> None:
    env = {"HOME": "/home/u"}
    assert state_dir(env) == Path("/home/u/.local/state/dtm")
    assert config_file(env) == Path("/home/u/.config/dtm/config.toml")
    env = {"HOME": "/home/u", "XDG_STATE_HOME": "/s", "XDG_CONFIG_HOME": "/c"}
    assert history_file(env) == Path("/s/dtm/history")
    assert config_file(env) == Path("/c/dtm/config.toml")
    # A relative XDG value is invalid and ignored.
    assert state_dir({"HOME": "/h", "XDG_STATE_HOME": "rel"}) == Path("/h/.local/state/dtm")


def test_a_missing_file_is_an_empty_session(tmp_path: Path) -> None:
    s, warnings = store(tmp_path)
    assert s.load() == SessionToken()
    assert warnings == []


def test_tokens_are_kept_per_url_and_merged(tmp_path: Path) -> None:
    a, _ = store(tmp_path, A)
    b, _ = store(tmp_path, B)
    a.save(SessionToken({"store1": 5}, {"store1": "e1e1e1e1e1e1e1e1"}, 100))
    b.save(SessionToken({"store9": 1}, {"store9": "e9e9e9e9e9e9e9e9"}, 7))
    # Another process saved an older token for A meanwhile: the maximum survives.
    a.save(
        SessionToken(
            {"store1": 3, "store2": 4},
            {"store1": "e1e1e1e1e1e1e1e1", "store2": "e2e2e2e2e2e2e2e2"},
            90,
        )
    )
    assert a.load() == SessionToken(
        {"store1": 5, "store2": 4},
        {"store1": "e1e1e1e1e1e1e1e1", "store2": "e2e2e2e2e2e2e2e2"},
        100,
    )
    assert b.load() == SessionToken({"store9": 1}, {"store9": "e9e9e9e9e9e9e9e9"}, 7)
    data = json.loads((tmp_path / "dtm" / "session.json").read_text())
    assert set(data["sessions"]) == {A, B}
    assert [p.name for p in (tmp_path / "dtm").iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b'{"sessions": 3}',
        b'{"other": {}}',
        b"\xff\xfe",
        b'{"sessions": {"x": {"hlc": "a"}}}',
    ],
)
def test_a_malformed_file_is_ignored_with_a_warning(tmp_path: Path, content: bytes) -> None:
    s, warnings = store(tmp_path)
    (tmp_path / "dtm").mkdir()
    (tmp_path / "dtm" / "session.json").write_bytes(content)
    assert s.load() == SessionToken()
    assert len(warnings) == 1 and "malformed session file" in warnings[0]
    s.save(
        SessionToken({"store1": 1}, {"store1": "e1e1e1e1e1e1e1e1"}, 1)
    )  # and it is replaced by a good one
    assert s.load().versions == {"store1": 1}


def test_an_unwritable_folder_is_a_warning_not_an_error(tmp_path: Path) -> None:
    (tmp_path / "dtm").write_text("a file where the folder should be")
    s, warnings = store(tmp_path)
    s.save(SessionToken({"store1": 1}, {"store1": "e1e1e1e1e1e1e1e1"}, 1))
    assert warnings and "cannot save" in warnings[0]


def test_url_precedence() -> None:
    cfg = parse_config(b'url = "http://from-file:1"\n', "cfg")
    env = {"TODO_URL": "http://from-env:2"}
    assert str(resolve("http://flag:3", env, cfg).url) == "http://flag:3"
    assert resolve("http://flag:3", env, cfg).source == "--url"
    assert str(resolve(None, env, cfg).url) == "http://from-env:2"
    assert str(resolve(None, {}, cfg).url) == "http://from-file:1"
    assert str(resolve(None, {}, None).url) == "http://127.0.0.1:7400"
    assert str(resolve(None, {"TODO_URL": ""}, None).url) == "http://127.0.0.1:7400"
    assert resolve(None, {}, None).timeout == DEFAULT_TIMEOUT
    assert resolve(None, {}, parse_config(b"timeout = 2.5", "cfg")).timeout == 2.5


def test_the_config_file(tmp_path: Path) -> None:
    assert read_config(tmp_path / "absent.toml") is None
    path = tmp_path / "config.toml"
    path.write_text('url = "http://h:5/prefix/"\n')
    cfg = read_config(path)
    assert cfg is not None and str(resolve(None, {}, cfg).url) == "http://h:5/prefix"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b'colour = "red"\n', "colour"),
        (b"url = 5\n", "url"),
        (b"url = \n", "not valid TOML"),
        (b"timeout = -1\n", "timeout"),
    ],
)
def test_config_mistakes_name_the_file(content: bytes, fragment: str) -> None:
    with pytest.raises(ErrSyntaxInvalidArgs) as info:
        parse_config(content, "/x/config.toml")
    assert "/x/config.toml" in info.value.message and fragment in info.value.message


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("127.0.0.1:7400", "not a URL"),
        ("ftp://h:1", "only http:// and https://"),
        ("http://:1", "host"),
        ("http://h:99999", "port"),
        ("http://h:x", "port"),
        ("http://h:1/a?b", "query"),
    ],
)
def test_bad_urls_name_where_they_came_from(url: str, fragment: str) -> None:
    with pytest.raises(ErrSyntaxInvalidArgs) as info:
        resolve(None, {"TODO_URL": url}, None)
    assert info.value.message.startswith("TODO_URL") and fragment in info.value.message


def test_ipv6_urls() -> None:
    assert str(resolve("http://[::1]:7400", {}, None).url) == "http://[::1]:7400"
