"""The `todo` one-shot commands as real processes against a real cluster (node, balancer,
handler on free loopback ports), with XDG_STATE_HOME and XDG_CONFIG_HOME inside the test folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.harness import LocalCluster, free_port, request, running


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def err_json(self) -> Any:
        return json.loads(self.err)


class Todo:
    """Runs `todo` as a separate process with its own state and config folders."""

    def __init__(self, home: Path, url: str, token: str) -> None:
        self.home = home
        self.url = url
        drop = ("TODO_URL", "TODO_TOKEN", "NO_COLOR")
        self.env = {k: v for k, v in os.environ.items() if k not in drop}
        self.env.update(
            HOME=str(home),
            XDG_STATE_HOME=str(home / "state"),
            XDG_CONFIG_HOME=str(home / "config"),
            TODO_URL=url,
            TODO_TOKEN=token,
            PYTHONIOENCODING="utf-8",
        )

    def __call__(self, *args: str, stdin: str | None = None, **env: str) -> Run:
        proc = subprocess.run(
            [sys.executable, "-m", "dtm.cli.main", *args],
            input=stdin,
            capture_output=True,
            text=True,
            encoding="utf-8",
            env={**self.env, **env},
            timeout=30,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    @property
    def session_file(self) -> Path:
        return self.home / "state" / "dtm" / "session.json"


@pytest.fixture(scope="module")
def one(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One data node: every CLI behaviour, without waiting for replication."""
    with running(Path(tmp_path_factory.mktemp("cli_oneshot")), nodes=1) as c:
        yield c


@pytest.fixture
def todo(one: LocalCluster, tmp_path: Path) -> Todo:
    return Todo(tmp_path, one.url("handler"), one.user_token)


def ok(run: Run) -> Run:
    assert run.code == 0, run
    return run


def fails(run: Run, code: int, name: str) -> str:
    """Assert an error exit: the code, nothing on stdout, one `Name: message` first line."""
    assert run.code == code, run
    assert run.out == "", run
    first = run.err.splitlines()[0]
    assert first.startswith(f"{name}: "), run
    assert "Traceback" not in run.err
    return first


def test_a_whole_session_in_plain_text(todo: Todo) -> None:
    first = ok(todo("add", "Buy", "groceries")).out.strip()
    second = ok(todo("create", "Call mom")).out.strip()
    assert len(first) == 12 and len(second) == 12  # piped: the bare full ID
    listing = ok(todo("list")).out
    assert listing.splitlines()[0] == "Open (2)"
    assert f"  {first[:4]}  Buy groceries" in listing
    assert listing.splitlines()[-2:] == ["Completed (0)", "  (none)"]
    assert ok(todo("update", first[:4], "complete")).out == f"Completed {first}  Buy groceries\n"
    listing = ok(todo("ls")).out.splitlines()
    assert listing[:3] == ["Open (1)", f"  {second[:4]}  Call mom", "Completed (1)"]
    assert ok(todo("update", first, "open")).out == f"Reopened {first}  Buy groceries\n"
    assert ok(todo("update", first, "--text", "Buy", "milk")).out == f"Updated {first}  Buy milk\n"
    assert ok(todo("edit", first[:6], "Buy bread")).out == f"Updated {first}  Buy bread\n"
    assert ok(todo("delete", first[:4])).out == f"Deleted {first}\n"
    assert ok(todo("rm", second)).out == f"Deleted {second}\n"
    assert ok(todo("list")).out == "Open (0)\n  (none)\nCompleted (0)\n  (none)\n"


def test_every_command_speaks_json(todo: Todo) -> None:
    task = ok(todo("--json", "add", "Write", "report")).json()
    assert set(task) == {"id", "text", "status", "created", "updated", "due", "tags"}
    assert (task["text"], task["status"]) == ("Write report", "open")
    listed = ok(todo("list", "--json")).json()
    assert listed == {"open": [task], "complete": []}
    done = ok(todo("update", "--json", task["id"][:4], "complete")).json()
    assert (done["id"], done["status"], done["created"]) == (
        task["id"],
        "complete",
        task["created"],
    )
    assert ok(todo("ls", "--json")).json() == {"open": [], "complete": [done]}
    edited = ok(todo("edit", "--json", task["id"], "Write", "the", "report")).json()
    assert edited["text"] == "Write the report" and edited["status"] == "complete"
    assert ok(todo("rm", task["id"], "--json")).json() == {"id": task["id"], "deleted": True}
    err = todo("--json", "rm", task["id"])
    assert err.code == 3 and err.out == ""
    assert err.err_json() == {
        "error": "ErrNoDataFound",
        "message": f"no task with ID '{task['id']}'",
    }


@pytest.mark.parametrize(
    "text",
    [
        "He said \"hi\" and 'bye'",
        "back\\slash \\n \\\\ end\\",
        "ünïcödé ✓ 日本語 🎉",
        "-x starts with a dash",
        "--json is text here",
    ],
)
def test_texts_round_trip_exactly(todo: Todo, text: str) -> None:
    task = ok(todo("--json", "add", "--", text)).json()
    assert task["text"] == text
    listed = ok(todo("--json", "list")).json()
    assert [t["text"] for t in listed["open"] if t["id"] == task["id"]] == [text]
    assert text in ok(todo("list")).out
    ok(todo("rm", task["id"]))


def test_unknown_ids(todo: Todo) -> None:
    line = fails(todo("update", "zzzz", "complete"), 3, "ErrNoDataFound")
    assert line == "ErrNoDataFound: no task with ID 'zzzz'"
    fails(todo("delete", "zzzzzzzzzzzz"), 3, "ErrNoDataFound")
    fails(todo("edit", "zzzz", "x"), 3, "ErrNoDataFound")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("add",), "needs the task text"),
        (("add", "   "), "empty"),
        (("add", "tab\there"), "control character"),
        (("add", "-x"), "unknown option"),
        (("update",), "needs a task ID"),
        (("update", "abcd"), "needs a status"),
        (("update", "abcd", "done"), "invalid status 'done'"),
        (("delete",), "needs a task ID"),
        (("delete", "ab"), "too short"),
        (("list", "--limit", "x"), "positive number"),
        (("frobnicate",), "unknown command 'frobnicate'"),
        (("--url", "ftp://x", "list"), "only http://"),
    ],
)
def test_usage_mistakes_are_syntax_errors(todo: Todo, args: tuple[str, ...], fragment: str) -> None:
    assert fragment in fails(todo(*args), 2, "ErrSyntaxInvalidArgs")
    as_json = todo("--json", *args)
    assert as_json.code == 2 and as_json.out == ""
    assert as_json.err_json()["error"] == "ErrSyntaxInvalidArgs"


def test_text_over_the_limit(todo: Todo) -> None:
    # The size rule's own name; a kind of ErrSyntaxInvalidArgs, with its exit code.
    assert "limit is 1000" in fails(todo("add", "x" * 1001), 2, "ErrPayloadTooLarge")
    assert ok(todo("--json", "add", "y" * 1000)).json()["text"] == "y" * 1000


def test_ambiguous_prefixes_list_the_candidates(one: LocalCluster, todo: Todo) -> None:
    value = b'{"text":"twin","status":"open","created":"2026-01-01T00:00:00.000Z",'
    value += b'"updated":"2026-01-01T00:00:00.000Z"}'
    for key in ("wwww00000001", "wwww00000002"):
        resp = request(
            "PUT", f"{one.url('store1')}/v1/kv/tester.{key}", b'{"value":' + value + b"}"
        )
        assert resp.status == 200, resp
    run = todo("delete", "wwww")
    line = fails(run, 4, "ErrAmbiguousID")
    assert "wwww00000001" in run.err and "wwww00000002" in run.err, line
    assert sorted(todo("--json", "rm", "wwww").err_json()["candidates"]) == [
        "wwww00000001",
        "wwww00000002",
    ]
    listing = ok(todo("list")).out
    assert "  wwww00000001  twin" in listing and "  wwww00000002  twin" in listing
    ok(todo("rm", "wwww00000001"))
    ok(todo("rm", "wwww"))  # now unique


def test_an_unreachable_handler_is_one_clear_line(todo: Todo) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run = todo("list", TODO_URL=url)
    assert run.code == 6 and run.out == ""
    assert (
        run.err
        == f"ErrUnavailable: cannot reach the request handler at {url} (connection refused)\n"
    )
    assert todo("--json", "add", "x", TODO_URL=url).err_json()["error"] == "ErrUnavailable"


def test_where_the_handler_is_found(todo: Todo) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    config = todo.home / "config" / "dtm" / "config.toml"
    config.parent.mkdir(parents=True)
    # --url beats TODO_URL.
    ok(todo("--url", todo.url, "list", TODO_URL=dead))
    # TODO_URL beats the config file.
    config.write_text(f'url = "{dead}"\n')
    ok(todo("list"))
    # Without TODO_URL the config file is used (not the default).
    assert dead in fails(todo("list", TODO_URL=""), 6, "ErrUnavailable")
    config.write_text(f'url = "{todo.url}"\n')
    ok(todo("list", TODO_URL=""))
    # Unknown keys in it are errors that name the file.
    config.write_text(f'url = "{todo.url}"\ncolor = true\n')
    line = fails(todo("list"), 2, "ErrSyntaxInvalidArgs")
    assert str(config) in line and "color" in line


def test_read_your_writes_across_processes(todo: Todo) -> None:
    for n in range(3):
        task_id = ok(todo("add", f"round {n}")).out.strip()
        assert task_id in ok(todo("--json", "list")).out
    saved = json.loads(todo.session_file.read_text())
    assert list(saved["sessions"]) == [todo.url]
    assert saved["sessions"][todo.url]["versions"]["store1"] >= 3


def test_a_malformed_state_file_is_a_warning(todo: Todo) -> None:
    todo.session_file.parent.mkdir(parents=True)
    todo.session_file.write_text("{not json")
    run = ok(todo("add", "still works"))
    assert "warning: ignoring the malformed session file" in run.err
    assert "Traceback" not in run.err
    assert todo.url in json.loads(todo.session_file.read_text())["sessions"]  # rewritten


def test_help_everywhere(todo: Todo) -> None:
    top = ok(todo("help")).out
    assert ok(todo("--help")).out == top
    for word in ("create", "list", "update", "delete", "help", "Exit codes"):
        assert word in top
    for cmd in ("create", "add", "list", "ls", "update", "edit", "delete", "rm", "help", "shell"):
        assert ok(todo(cmd, "--help")).out.startswith("Usage: todo "), cmd
    assert ok(todo("help", "update")).out == ok(todo("update", "-h")).out
    # Help never needs the handler.
    assert ok(todo("help", TODO_URL=f"http://127.0.0.1:{free_port()}")).out == top


def test_read_your_writes_across_processes_with_two_nodes(
    cluster: Callable[..., LocalCluster], tmp_path: Path
) -> None:
    """No sync runs here, and the balancer alternates the nodes: a list finds the new task only
    because the session file carried the create's token to the next process."""
    c = cluster(nodes=2)
    c.start_nodes()
    c.start("balancer")
    c.start("handler")
    origins: list[str] = []
    for n in range(8):
        todo = Todo(
            tmp_path / f"user{n}", c.url("handler"), c.user_token
        )  # a fresh session each round
        if n % 2:  # one more request moves the round-robin on, so the creates alternate
            ok(Todo(tmp_path / f"other{n}", c.url("handler"), c.user_token)("list"))
        task_id = ok(todo("add", f"round {n}")).out.strip()
        (origin,) = json.loads(todo.session_file.read_text())["sessions"][todo.url]["versions"]
        origins.append(origin)
        listed = ok(todo("--json", "list")).json()
        assert task_id in [t["id"] for t in listed["open"]], (n, origin)
    assert set(origins) == {"store1", "store2"}, origins


def test_one_session_across_processes_with_two_nodes_and_the_sync(
    cluster: Callable[..., LocalCluster], tmp_path: Path
) -> None:
    """The session spans both nodes; every command, a new process, still sees all it did."""
    c = cluster(nodes=2)
    c.start_nodes()
    c.start("balancer")
    c.start("handler")
    c.start("sync")
    todo = Todo(tmp_path, c.url("handler"), c.user_token)
    ids = [ok(todo("add", f"task {n}")).out.strip() for n in range(4)]
    for n, task_id in enumerate(ids):
        listed = ok(todo("--json", "list")).json()
        assert [t["id"] for t in listed["open"]] == ids[n:]
        assert [t["id"] for t in listed["complete"]] == ids[:n]
        ok(todo("update", task_id, "complete"))
    ok(todo("rm", ids[0]))
    listed = ok(todo("--json", "list")).json()
    assert listed["open"] == [] and [t["id"] for t in listed["complete"]] == ids[1:]
    versions = json.loads(todo.session_file.read_text())["sessions"][todo.url]["versions"]
    assert set(versions) == {"store1", "store2"}
    # The sync's view of it, through the same CLI.
    view = ok(todo("cluster", "status", "--config", str(c.config_path))).out
    assert "store1 -> store2" in view and "store2 -> store1" in view
    by_url = todo("cluster", "status", "--url", c.url("sync"), "--config", str(c.config_path))
    assert "store1 -> store2" in ok(by_url).out


def test_cluster_status_mistakes(todo: Todo) -> None:
    fails(todo("cluster"), 2, "ErrSyntaxInvalidArgs")
    fails(todo("cluster", "frob"), 2, "ErrSyntaxInvalidArgs")
    fails(todo("cluster", "status", "--bogus"), 2, "ErrSyntaxInvalidArgs")
    dead = f"http://127.0.0.1:{free_port()}"
    as_json = todo("--json", "cluster", "status", "--url", dead)
    assert as_json.code == 6 and as_json.err_json()["error"] == "ErrUnavailable"
    fails(todo("cluster", "status", "--url", dead), 6, "ErrUnavailable")
    assert "cluster status" in ok(todo("help", "cluster")).out


def test_where_the_user_token_is_found(one: LocalCluster, todo: Todo) -> None:
    good, bad = one.user_token, "dtmu_not-a-known-token"
    config = todo.home / "config" / "dtm"
    config.mkdir(parents=True, exist_ok=True)
    # No token anywhere: exit 8, and the message says how to get one.
    line = fails(todo("list", TODO_TOKEN=""), 8, "ErrUnauthorized")
    assert "dtm user add" in line and "TODO_TOKEN" in line
    # The local token file `dtm cluster up` writes is found last.
    (config / "local.token").write_text(good + "\n")
    ok(todo("list", TODO_TOKEN=""))
    # The config file's token beats it; TODO_TOKEN beats the config; --token beats TODO_TOKEN.
    (config / "config.toml").write_text(f'token = "{bad}"\n')
    assert "config.toml" in fails(todo("list", TODO_TOKEN=""), 8, "ErrUnauthorized")
    ok(todo("list", TODO_TOKEN=good))
    assert "TODO_TOKEN" in fails(todo("list", TODO_TOKEN=bad), 8, "ErrUnauthorized")
    ok(todo("--token", good, "list", TODO_TOKEN=bad))
    assert "--token" in fails(todo("--token", bad, "list"), 8, "ErrUnauthorized")
    (config / "token").write_text(good + "\n")
    (config / "config.toml").write_text('token_file = "token"\n')
    ok(todo("list", TODO_TOKEN=""))
