"""The terminal's Ctrl-C reaches the todo shell alone, not the program that started it.

Rule: a shell on a terminal that shares its process group with the program that started it (as
`make exec` runs it) moves into a group of its own and makes that group the terminal's
foreground one while it runs, and gives the terminal back to the group it took it from when it
leaves; anywhere else (a shell started by a job-control shell leads its group already; no
controlling terminal) it changes nothing.

Why: a terminal sends Ctrl-C's SIGINT to its whole foreground group. The shell takes it as "stop
waiting for this command", but make, in the same group, takes it as fatal: it waits for the
shell to end and then ends with status 130, however the shell was left. While the shell owns
the terminal, job-control stops (Ctrl-Z) are ignored: the parent waits for the shell and would
never see it stopped, so the terminal would hang.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

_STOPS = (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)


def _take(fd: int) -> int | None:
    """Take the terminal for a group of our own; the group it had, or None if not taken."""
    try:
        group = os.getpgrp()
        if os.getpid() == group or os.tcgetpgrp(fd) != group:
            return None  # our group is ours already, or we are not in the foreground
    except OSError:  # not a terminal, or not our controlling one
        return None
    for sig in _STOPS:  # a background group calling tcsetpgrp gets SIGTTOU
        signal.signal(sig, signal.SIG_IGN)
    try:
        os.setpgid(0, 0)
    except OSError:
        _restore()
        return None
    try:
        os.tcsetpgrp(fd, os.getpgrp())
    except OSError:
        with contextlib.suppress(OSError):
            os.setpgid(0, group)  # back where we were: still in the foreground
        _restore()
        return None
    return group


def _restore() -> None:
    for sig in _STOPS:
        signal.signal(sig, signal.SIG_DFL)


@contextlib.contextmanager
def owned(fd: int) -> Iterator[None]:
    """Own the terminal on ``fd`` while the block runs (see the rule above)."""
    group = _take(fd)
    try:
        yield
    finally:
        if group is not None:
            with contextlib.suppress(OSError):
                os.tcsetpgrp(fd, group)
            # SIGTTOU stays ignored: a last line written after this must not stop us.
            signal.signal(signal.SIGTSTP, signal.SIG_DFL)
            signal.signal(signal.SIGTTIN, signal.SIG_DFL)
