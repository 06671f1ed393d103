"""The terminal shell's keys: Ctrl-C stops the command in flight and keeps the shell, leaving
is status 0 even after a failed command, IDs complete from the first Tab, and `clear`."""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_cli_shell import PROMPT, Pty, env, one  # noqa: F401 (fixtures)
from test_cli_shell import shell as piped
from tests.harness import LocalCluster


@pytest.fixture
def silent_handler() -> Iterator[socket.socket]:
    """A handler that accepts connections and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as s:
        s.settimeout(15)
        yield s


def _interrupt_a_write(
    term: Pty, handler: socket.socket, held: list[socket.socket], ctrl_c: Callable[[], None]
) -> None:
    """Open the shell, send `add` to a handler that never answers, Ctrl-C it, and see the shell
    say the write may land and prompt again (``held``: the connections, for the caller)."""
    held.append(handler.accept()[0])  # the shell asks for the IDs when it opens
    term.read_until(PROMPT)
    term.send("add Something\r")
    held.append(handler.accept()[0])  # the command is in flight
    ctrl_c()
    term.read_until(r"cancelled: .*a write may still land")
    term.read_until(PROMPT)


def test_ctrl_c_cancels_the_command_in_flight_and_keeps_the_shell(
    env: dict[str, str],  # noqa: F811
    silent_handler: socket.socket,
) -> None:
    url = f"http://127.0.0.1:{silent_handler.getsockname()[1]}"
    term = Pty({**env, "TODO_URL": url})
    held = []
    try:
        # Ctrl-C on a terminal is SIGINT to its foreground process group; this pseudo-terminal
        # is not the shell's controlling terminal, so the signal is sent as the terminal would.
        _interrupt_a_write(
            term, silent_handler, held, lambda: os.killpg(term.proc.pid, signal.SIGINT)
        )
        assert term.proc.poll() is None  # the shell is still there
        term.send("exit\r")
        assert term.proc.wait(15) == 0
    finally:
        term.close()
        for conn in held:
            conn.close()


def test_ctrl_c_in_the_shell_under_make_leaves_make_exec_status_0(
    env: dict[str, str],  # noqa: F811
    silent_handler: socket.socket,
    tmp_path: Path,
) -> None:
    """`make exec` runs the shell as make's child, in make's process group: a real terminal's
    Ctrl-C (typed here, on the controlling terminal) must stop the command in flight and reach
    neither make (which would end with status 130 once the shell is left) nor the prompt."""
    makefile = tmp_path / "Makefile"
    makefile.write_text('exec:\n\t@"$(TODO)" shell\n')
    todo = str(Path(sys.executable).parent / "todo")
    url = f"http://127.0.0.1:{silent_handler.getsockname()[1]}"
    argv = ["make", "-s", "-f", str(makefile), "exec", f"TODO={todo}"]
    term = Pty({**env, "TODO_URL": url}, argv, controlling=True)
    held = []
    try:
        _interrupt_a_write(term, silent_handler, held, lambda: term.send("\x03"))  # as typed
        term.send("exit\r")
        assert term.proc.wait(15) == 0, term.seen[-2000:]
    finally:
        term.close()
        for conn in held:
            conn.close()


def test_ids_complete_from_the_first_tab_and_leaving_after_a_failure_is_0(
    one: LocalCluster,  # noqa: F811
    env: dict[str, str],  # noqa: F811
) -> None:
    made = piped(env, "add Known before the shell\n").stdout.strip()
    term = Pty(env)
    try:
        term.read_until(PROMPT)
        term.send(f"show {made[:3]}\t")  # no list has run in this shell
        term.read_until(rf"todo>\s*show {made[:4]}\s*$")
        term.send("\r")
        term.read_until(rf"ID:\s+{made}")
        term.read_until(PROMPT)
        term.send("add Second\r")
        second = term.read_until(r"Created (\w{12})  Second\n")
        new_id = second.rsplit("Created ", 1)[1][:12]
        term.read_until(PROMPT)
        term.send(f"done {new_id[:3]}\t")  # learnt after the write
        term.read_until(rf"todo>\s*done {new_id[:4]}\s*$")
        term.send("\r")
        term.read_until(rf"Completed {new_id}")
        term.read_until(PROMPT)
        term.send("update zzzz open\r")
        term.read_until(r"ErrNoDataFound")
        term.read_until(PROMPT)
        term.send("\x04")
        assert term.proc.wait(15) == 0
    finally:
        term.close()


def test_clear_clears_the_screen(env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    term = Pty(env)
    try:
        term.read_until(PROMPT)
        term.send("clear\r")
        term.read_until(r"clear\n(.|\n)*todo>\s*$")
        assert "\x1b[2J" in term.seen.rsplit("clear", 1)[1]
        term.send("exit\r")
        assert term.proc.wait(15) == 0
    finally:
        term.close()
