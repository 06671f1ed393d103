"""Fuzz the CLI's own code: any argv of `todo` and any lines piped into its shell end with no
traceback, an error name on stderr and a distinct exit code of dtm.errors — never ErrInternal.

In process (dtm.cli.main.main), against a handler URL where nothing listens, so every command
that gets past the parser ends in ErrUnavailable quickly; bounded to 200 examples each.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dtm.cli import main as cli_main
from dtm.errors import ALL_ERRORS

CODES = {0} | {e.exit_code for e in ALL_ERRORS}
ERROR_LINE = re.compile(r"^(Err\w+): ", re.MULTILINE)
JSON_ERROR = re.compile(r'^\{"error":"(Err\w+)"', re.MULTILINE)

VOCAB = [
    *("create", "add", "list", "ls", "update", "edit", "delete", "rm", "help", "shell"),
    *("exit", "quit", "todo", "cluster", "status", "complete", "open"),
    *("--json", "--url", "--url=", "--token", "--token=x", "--text", "--text=", "--status"),
    *("--status=open", "-h", "--help", "--", "-x", "--bogus", "#", "abcd", "abcd00000000"),
    *("0123456789abc", "zzzz", "http://127.0.0.1:1", "http://[::1", "ftp://x", ""),
]
words = st.one_of(st.sampled_from(VOCAB), st.text(max_size=20))
argvs = st.lists(words, max_size=6)
lines = st.lists(
    st.one_of(st.lists(words, max_size=5).map(" ".join), st.text(max_size=30)), max_size=5
)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TODO_URL", "TODO_TOKEN", "DTM_DEBUG", "DTM_SYNC_URL", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("TODO_URL", "http://127.0.0.1:1")  # nothing listens on port 1
    monkeypatch.setenv("DTM_SYNC_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("TODO_TOKEN", "dtmu_fuzz")


def run(argv: list[str], stdin: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin), out, err
    try:
        code = cli_main.main(argv)
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    return code, out.getvalue(), err.getvalue()


def check(code: int, err: str, argv: list[str]) -> None:
    assert "Traceback" not in err
    assert code in CODES, (code, err)
    names = ERROR_LINE.findall(err) + JSON_ERROR.findall(err)
    assert "ErrInternal" not in names, err
    if code != 0 and "cluster" not in argv:  # `cluster status` prints argparse's usage errors
        assert names, err


FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(argv=argvs)
def test_any_argv_ends_in_a_named_error_or_success(env: None, argv: list[str]) -> None:
    if argv[:1] in (["shell"], []) or argv == ["--json"]:
        argv = ["help"]  # the shell has its own test below
    code, _, err = run(argv, "")
    check(code, err, argv)


@FUZZ
@given(script=lines, json=st.booleans())
def test_any_shell_lines_end_in_a_named_error_or_success(
    env: None, script: list[str], json: bool
) -> None:
    argv = ["--json"] if json else []
    code, _, err = run(argv, "\n".join(script) + "\n")
    check(code, err, [w for line in script for w in line.split()])
