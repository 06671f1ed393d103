"""The one-shot path stays lean: no heavy module is imported by a plain command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

HEAVY = ("aiohttp", "prompt_toolkit", "rich", "click", "http.client", "ssl", "asyncio", "uvloop")

PROBE = """
import sys
from dtm.cli.main import main
code = main(["--url", sys.argv[1], "list"])
sys.stdout.write(",".join(sorted(sys.modules)) + "\\n" + str(code))
"""


def test_a_one_shot_command_imports_nothing_heavy(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TODO_URL"}
    env.update(HOME=str(tmp_path), XDG_STATE_HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, not listening: the command fails fast (refused)
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        proc = subprocess.run(
            [sys.executable, "-c", PROBE, url], capture_output=True, text=True, timeout=30, env=env
        )
    modules, code = proc.stdout.splitlines()
    assert code == "6", proc.stderr
    loaded = set(modules.split(","))
    assert "dtm.cli.client" in loaded
    assert sorted(m for m in HEAVY if m in loaded) == []
