"""No single point of failure: two balancers and two handlers (each handler configured with both
balancers), and a `todo` CLI whose TODO_URL lists both handlers. One balancer, then the handler
the CLI is using, is SIGKILLed between commands; every later command succeeds, and what the
session just wrote is shown right after each switch (the session token is the list's, so it
survives the move to the other handler). Stdout carries only the commands' own output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.harness import LocalCluster, free_port, request, wait_until

FAST_HEALTH = {"health_interval_ms": 100, "health_timeout_ms": 300, "connect_timeout_ms": 300}


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Todo:
    """`todo` as a separate process, with its own state and config folders."""

    def __init__(self, home: Path, urls: list[str], token: str) -> None:
        self.state = home / "state"
        drop = ("TODO_URL", "TODO_TOKEN", "NO_COLOR")
        self.env = {k: v for k, v in os.environ.items() if k not in drop}
        self.env.update(
            HOME=str(home),
            XDG_STATE_HOME=str(self.state),
            XDG_CONFIG_HOME=str(home / "config"),
            TODO_URL=",".join(urls),
            TODO_TOKEN=token,
            PYTHONIOENCODING="utf-8",
        )
        self.runs: list[Run] = []

    def __call__(self, *args: str, code: int = 0) -> Run:
        proc = subprocess.run(
            [sys.executable, "-m", "dtm.cli.main", "--json", *args],
            capture_output=True,
            text=True,
            encoding="utf-8",
            env=self.env,
            timeout=60,
        )
        run = Run(proc.returncode, proc.stdout, proc.stderr)
        assert run.code == code, f"todo {' '.join(args)} -> {run.code}: {run.err}"
        self.runs.append(run)
        return run

    def last_handler(self) -> str:
        data = json.loads((self.state / "dtm" / "handler.json").read_text())
        (url,) = data["last"].values()
        return str(url)

    def session(self) -> dict[str, Any]:
        sessions = json.loads((self.state / "dtm" / "session.json").read_text())["sessions"]
        (key,) = sessions
        assert key == ",".join(sorted(self.env["TODO_URL"].split(",")))
        return dict(sessions[key])


def _requests(c: LocalCluster, balancer: str) -> int:
    return int(request("GET", c.url(balancer) + "/v1/status").json()["requests"])


def _texts(listed: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    return {t["text"]: t["status"] for t in listed["open"] + listed["complete"]}


def _two_of_each(cluster: Callable[..., LocalCluster]) -> LocalCluster:
    """Two data nodes, the sync, two balancers, two handlers each given both balancers."""
    c = cluster(nodes=2, sections={"balancer": FAST_HEALTH})
    c.ports["balancer2"] = free_port()
    balancers = [f"127.0.0.1:{c.ports[b]}" for b in ("balancer", "balancer2")]
    c.sections["handler"] = {"balancers": balancers, "connect_timeout_ms": 500}
    c.write_config()
    c.start_nodes()
    c.start("sync")
    c.start("balancer")
    c.start_another("balancer", "balancer2")
    c.start("handler")
    c.start_another("handler", "handler2")
    return c


@pytest.mark.timeout(180)
def test_killing_a_balancer_then_a_handler_fails_no_command(
    cluster: Callable[..., LocalCluster], tmp_path: Path
) -> None:
    c = _two_of_each(cluster)
    balancers = [f"127.0.0.1:{c.ports[b]}" for b in ("balancer", "balancer2")]
    status = request("GET", c.url("handler2") + "/v1/status").json()
    assert status["balancer"] == ", ".join(f"http://{b}" for b in balancers)
    todo = Todo(tmp_path / "home", [c.url("handler"), c.url("handler2")], c.user_token)

    first = todo("add", "before", "any", "kill").json()
    second = todo("add", "second").json()
    assert _texts(todo("list").json()) == {"before any kill": "open", "second": "open"}

    # One balancer dies: both handlers go on through the other one.
    assert _requests(c, "balancer") > 0 and _requests(c, "balancer2") > 0  # both in turn
    c.procs["balancer"].kill()
    before = _requests(c, "balancer2")
    assert todo("done", first["id"]).json()["status"] == "complete"
    assert todo("show", first["id"]).json()["status"] == "complete"
    third = todo("add", "after", "the", "balancer").json()
    assert _texts(todo("list").json()) == {
        "before any kill": "complete",
        "second": "open",
        "after the balancer": "open",
    }
    assert todo("rm", second["id"]).json() == {"id": second["id"], "deleted": True}
    edited = todo("edit", third["id"], "written", "just", "before").json()
    assert edited["text"] == "written just before"
    token_before = todo.session()
    assert _requests(c, "balancer2") > before

    # The handler the CLI is using dies: the next command goes to the other, with the session.
    using = c.url("handler")
    assert all(r.err == "" for r in todo.runs)  # no switch so far: nothing on stderr
    c.procs["handler"].kill()
    shown = todo("show", third["id"])
    assert shown.json()["text"] == "written just before"  # read-your-writes across the switch
    assert using in shown.err and len(shown.err.splitlines()) == 1  # one note, on stderr only
    assert todo.last_handler() == c.url("handler2")
    assert _texts(todo("list").json()) == {
        "before any kill": "complete",
        "written just before": "open",
    }
    fourth = todo("add", "after", "the", "handler").json()
    assert todo("reopen", first["id"]).json()["status"] == "open"
    assert _texts(todo("list").json()) == {
        "before any kill": "open",
        "written just before": "open",
        "after the handler": "open",
    }
    assert todo("rm", fourth["id"]).json()["deleted"] is True
    later = todo.runs[-4:]
    assert all(r.err == "" for r in later)  # it starts at the handler that answered last
    session = todo.session()
    assert all(session["versions"][n] >= v for n, v in token_before["versions"].items())

    # Both killed ones come back; the CLI stays where it is, and keeps working.
    c.start("balancer")
    c.start("handler")
    wait_until(lambda: request("GET", c.url("handler") + "/healthz").status == 200, 10)
    assert _texts(todo("list").json())["written just before"] == "open"
    assert todo.last_handler() == c.url("handler2")


@pytest.mark.timeout(120)
def test_a_write_in_flight_to_a_hung_handler_may_have_been_applied(
    cluster: Callable[..., LocalCluster], tmp_path: Path
) -> None:
    """A handler that accepts connections but never answers (SIGSTOP): a `todo add` sent to it is
    exit 11 and not sent again; a read goes on to the other handler after the timeout."""
    c = _two_of_each(cluster)
    todo = Todo(tmp_path / "home", [c.url("handler"), c.url("handler2")], c.user_token)
    config = tmp_path / "home" / "config" / "dtm"
    config.mkdir(parents=True)
    (config / "config.toml").write_text("timeout = 2\n")
    task = todo("add", "before").json()
    c.procs["handler"].signal(signal.SIGSTOP)
    lost = todo("add", "in", "flight", code=11)
    assert lost.out == "" and "ErrMaybeApplied" in lost.err and "may have" in lost.err
    shown = todo("show", task["id"])  # a read: on to the other handler
    assert shown.json()["text"] == "before" and c.url("handler") in shown.err
    assert todo.last_handler() == c.url("handler2")
    assert todo("done", task["id"]).json()["status"] == "complete"
    c.procs["handler"].signal(signal.SIGCONT)
    # The lost write did or did not happen; never twice.
    texts = [t["text"] for t in todo("list", "--all").json()["open"]]
    assert texts.count("in flight") <= 1
