"""The `todo` shell as a real process against a real cluster: line by line from a pipe, and
interactive on a pseudo-terminal (prompt, Tab completion, Ctrl-D).
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.harness import LocalCluster, free_port, running


@pytest.fixture(scope="module")
def one(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with running(Path(tmp_path_factory.mktemp("cli_shell")), nodes=1) as c:
        yield c


@pytest.fixture
def env(one: LocalCluster, tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in ("TODO_URL", "TODO_TOKEN", "NO_COLOR")}
    e.update(
        TODO_TOKEN=one.user_token,
        HOME=str(tmp_path),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        TODO_URL=one.url("handler"),
        PYTHONIOENCODING="utf-8",
    )
    return e


def shell(env: dict[str, str], script: str | bytes, *args: str) -> subprocess.CompletedProcess[str]:
    """`printf script | todo [args]`."""
    data = script.encode() if isinstance(script, str) else script
    proc = subprocess.run(
        [sys.executable, "-m", "dtm.cli.main", *args],
        input=data,
        capture_output=True,
        env=env,
        timeout=60,
    )
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode()
    )


def test_the_spec_example_ends_at_end_of_input(env: dict[str, str]) -> None:
    run = shell(env, "create A\nlist\n")
    assert run.returncode == 0, run
    new_id, *listing = run.stdout.splitlines()
    assert len(new_id) == 12
    assert listing == ["Open (1)", f"  {new_id[:4]}  A", "Completed (0)", "  (none)"]
    assert run.stderr == ""


def test_every_command_in_the_shell(env: dict[str, str]) -> None:
    first = shell(env, "add Buy groceries\n").stdout.strip()
    p = first[:4]
    script = "\n".join(
        [
            "# comments and blank lines are skipped",
            "",
            'create He said "hi" and \\o/ ünï',
            'add an "unbalanced quote',
            "create -- -leading dash",
            f"update {p} complete",
            f"update {p} open",
            f"update {p} --text Buy   milk",
            f"edit {p} Buy bread",
            "list",
            f"delete {first}",
            "help",
            "help update",
            "quit",
            "list",  # never runs: quit ended the shell
        ]
    )
    run = shell(env, script + "\n")
    assert run.returncode == 0, run
    out = run.stdout.splitlines()
    assert len(out[0]) == len(out[1]) == len(out[2]) == 12
    assert out[3:7] == [
        f"Completed {first}  Buy groceries",
        f"Reopened {first}  Buy groceries",
        f"Updated {first}  Buy   milk",
        f"Updated {first}  Buy bread",
    ]
    end = out.index(f"Deleted {first}")  # the list came before it (other tests' tasks too)
    assert out[7].startswith("Open (") and "Completed (0)" in out[7:end]
    listing = "\n".join(out[7:end])
    for task_id, text in zip(
        out[:3], ('He said "hi" and \\o/ ünï', 'an "unbalanced quote', "-leading dash"), strict=True
    ):
        assert f"  {task_id[:4]}  {text}\n" in listing + "\n"
    assert f"  {p}  Buy bread" in listing
    assert "exit" in run.stdout and "Usage: update <id>… complete|open" in run.stdout
    assert run.stdout.count("Open (") == 1
    assert run.stderr == ""


def test_errors_print_one_line_and_the_shell_goes_on(env: dict[str, str]) -> None:
    script = "\n".join(
        [
            "update zzzz complete",
            "delete ab",
            "frobnicate",
            "update abcd done",
            "create",
            "create -x",
            "shell",
            "add still running",
        ]
    )
    run = shell(env, script + "\n")
    assert run.returncode == 0, run  # the last command succeeded
    assert run.stderr.splitlines() == [
        "ErrNoDataFound: no task with ID 'zzzz'",
        "ErrSyntaxInvalidArgs: task ID 'ab' is too short: give at least 4 characters of the ID",
        "ErrSyntaxInvalidArgs: unknown command 'frobnicate' (try 'help')",
        "ErrSyntaxInvalidArgs: invalid status 'done': use complete or open",
        "ErrSyntaxInvalidArgs: create needs the task text",
        "ErrSyntaxInvalidArgs: unknown option '-x' for create "
        "(put -- before text that begins with a dash)",
        "ErrSyntaxInvalidArgs: already in the shell",
    ]
    assert len(run.stdout.strip()) == 12
    # The exit status is the last command's.
    assert shell(env, "list\ndelete zzzz\n").returncode == 3
    assert shell(env, "delete zzzz\nexit\n").returncode == 3
    assert shell(env, "").returncode == 0


def test_json_in_the_shell(env: dict[str, str]) -> None:
    run = shell(env, "create Write report\nlist\ndelete zzzz\n", "--json")
    assert run.returncode == 3
    task, listed = (json.loads(x) for x in run.stdout.splitlines())
    assert task["text"] == "Write report" and task in listed["open"]
    assert json.loads(run.stderr) == {
        "error": "ErrNoDataFound",
        "message": "no task with ID 'zzzz'",
    }
    # Or per line.
    run = shell(env, f"update {task['id']} complete --json\nrm --json {task['id']}\n")
    done, gone = (json.loads(x) for x in run.stdout.splitlines())
    assert done["status"] == "complete" and gone == {"id": task["id"], "deleted": True}


def test_undecodable_input_is_a_syntax_error_not_a_crash(env: dict[str, str]) -> None:
    run = shell(env, b"create bad \xff byte\nlist\n")
    assert run.returncode == 0, run
    assert run.stderr.startswith("ErrSyntaxInvalidArgs: ")
    assert "Traceback" not in run.stderr


def test_an_unreachable_handler_in_the_shell(env: dict[str, str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run = shell({**env, "TODO_URL": url}, "list\ncreate A\n")
    assert run.returncode == 6
    line = f"ErrUnavailable: cannot reach the request handler at {url} (connection refused)"
    assert run.stderr.splitlines() == [line, line]


# ---------------------------------------------------------------- on a terminal

PROMPT = r"todo>\s*$"
ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-Za-z]|[=>78])")


class Pty:
    """`todo` on a pseudo-terminal, read with deadlines."""

    def __init__(
        self, env: dict[str, str], argv: list[str] | None = None, controlling: bool = False
    ) -> None:
        """``argv`` (default: the shell) in a session of its own on a new pseudo-terminal;
        with ``controlling``, that terminal is the session's controlling one, so the keys a
        user types (Ctrl-C) signal its foreground process group as a real terminal's do."""
        self.master, slave = pty.openpty()
        os.set_blocking(self.master, False)

        def take_terminal() -> None:  # in the child, after its setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            argv or [sys.executable, "-m", "dtm.cli.main"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1", "COLUMNS": "100"},
            start_new_session=True,
            preexec_fn=take_terminal if controlling else None,
        )
        os.close(slave)
        self.seen = ""

    def read_until(self, pattern: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = ANSI.sub("", self.seen).replace("\r", "")
            if re.search(pattern, text):
                return text
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} within {timeout}s; screen:\n{text}")
            ready, _, _ = select.select([self.master], [], [], min(left, 0.2))
            if ready:
                try:
                    self.seen += os.read(self.master, 65536).decode(errors="replace")
                except OSError:  # the other side closed
                    if self.proc.poll() is not None:
                        raise AssertionError(f"todo exited; screen:\n{text}") from None

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        os.close(self.master)


@pytest.fixture
def term(env: dict[str, str]) -> Iterator[Pty]:
    t = Pty(env)
    try:
        yield t
    finally:
        t.close()


def test_the_interactive_shell(term: Pty, env: dict[str, str]) -> None:
    term.read_until(PROMPT)
    term.send("create A\r")
    text = term.read_until(r"Created (\w{12})  A\n")
    new_id = re.findall(r"Created (\w{12})  A", text)[-1]
    term.read_until(PROMPT)
    # Tab completes the command word ("li" alone would be an unknown command) ...
    term.send("li\t")
    term.read_until(r"todo>\s*list\s*$")
    term.send("\r")
    term.read_until(rf"Open \(\d+\)\n(.*\n)*  {new_id[:4]}\s+A\n(.*\n)*todo>\s*$")
    # ... and task IDs from the last list (3 characters alone would be too short).
    term.send(f"delete {new_id[:3]}\t")
    term.read_until(rf"todo>\s*delete {new_id[:4]}\s*$")
    term.send("\r")
    term.read_until(rf"Deleted {new_id}\n(.*\n)*todo>\s*$")
    term.send("update zzzz open\r")
    term.read_until(r"ErrNoDataFound: no task with ID 'zzzz'")
    term.read_until(PROMPT)
    term.send("\x04")  # Ctrl-D
    assert term.proc.wait(15) == 0  # leaving is not a failure (make exec stays quiet)
    history = Path(env["XDG_STATE_HOME"]) / "dtm" / "history"
    assert "create A" in history.read_text()
