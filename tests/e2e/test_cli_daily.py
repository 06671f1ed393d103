"""The `todo` a daily user keeps, as real processes against a real cluster: show, done and
reopen, several IDs at once, filters and search, due dates and tags, export and import,
session reset, --version, completion scripts; due dates and tags through the sync."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from syncutil import converged
from test_cli_oneshot import Todo, fails, ok
from tests.harness import LocalCluster, running

FAST_SYNC = {"wait_ms": 300, "anti_entropy_interval_ms": 600000}


@pytest.fixture(scope="module")
def one(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with running(Path(tmp_path_factory.mktemp("cli_daily")), nodes=1) as c:
        yield c


@pytest.fixture
def todo(one: LocalCluster, tmp_path: Path) -> Todo:
    return Todo(tmp_path, one.url("handler"), one.user_token)


def new(todo: Todo, *words: str) -> str:
    return ok(todo("add", *words)).out.strip()


def test_show_done_reopen_and_several_ids(todo: Todo) -> None:
    a, b = new(todo, "Buy milk"), new(todo, "Call mom")
    shown = ok(todo("show", a[:6])).out
    assert f"ID:      {a}" in shown and "Text:    Buy milk" in shown and "Status:  open" in shown
    done = ok(todo("done", a, b)).out.splitlines()
    assert done == [f"Completed {a}  Buy milk", f"Completed {b}  Call mom"]
    assert ok(todo("reopen", b)).out.strip() == f"Reopened {b}  Call mom"
    # One bad ID among several: the others are still done, each reported; its code is the exit.
    run = todo("delete", a, "zzzz", b)
    assert run.code == 3, run
    assert run.out.splitlines() == [f"Deleted {a}", f"Deleted {b}"]
    assert run.err.startswith("ErrNoDataFound: no task with ID 'zzzz'")
    assert fails(todo("show", a), 3, "ErrNoDataFound")


def test_due_dates_tags_and_overdue(todo: Todo) -> None:
    today = date.today()
    pay = new(todo, "Pay", "rent", "--due", "tomorrow", "+home", "+Bills")
    task = ok(todo("--json", "show", pay)).json()
    assert task["text"] == "Pay rent" and task["tags"] == ["home", "bills"]
    assert task["due"] == (today + timedelta(days=1)).isoformat()
    late = new(todo, "File", "taxes", "--due", (today - timedelta(days=2)).isoformat())
    listing = ok(todo("list", "--open")).out
    assert f"File taxes  due {(today - timedelta(days=2)).isoformat()} overdue" in listing
    assert "Pay rent  +home  +bills  due" in listing and "Completed (" not in listing
    assert "overdue" not in next(line for line in listing.splitlines() if "Pay rent" in line)
    # edit changes them; what is not given stays.
    ok(todo("edit", pay, "--due", "+3d"))
    task = ok(todo("--json", "show", pay)).json()
    assert task["due"] == (today + timedelta(days=3)).isoformat() and task["text"] == "Pay rent"
    ok(todo("edit", late, "File", "taxes", "now", "+work", "--due", "none"))
    task = ok(todo("--json", "show", late)).json()
    assert (task["text"], task["due"], task["tags"]) == ("File taxes now", None, ["work"])
    ok(todo("update", late, "--no-tags"))
    assert ok(todo("--json", "show", late)).json()["tags"] == []


def test_filters_search_sort_and_limit(todo: Todo) -> None:
    ids = [
        new(todo, "zebra", "milk", "+shop", "--due", "2031-01-03"),
        new(todo, "apple", "Milk", "+shop", "--due", "2031-01-01"),
        new(todo, "walk", "dog"),
    ]
    ok(todo("done", ids[2]))
    ids_of = lambda *a: ok(todo("list", "--ids", *a)).out.split()  # noqa: E731
    assert set(ids_of("milk")) == {ids[0], ids[1]}
    assert set(ids_of("+shop")) >= {ids[0], ids[1]} and ids[2] not in ids_of("+shop")
    assert ids[2] in ids_of("--completed") and ids[0] not in ids_of("--completed")
    assert ids_of("milk", "--sort", "text") == [ids[1], ids[0]]
    assert ids_of("milk", "--sort", "due") == [ids[1], ids[0]]
    assert ids_of("milk", "--limit", "1") == [ids[0]]
    assert ids_of("milk", "--due-before", "2031-01-02") == [ids[1]]
    short = ok(todo("list", "milk")).out
    assert "Open (2)" in short and "walk dog" not in short


def test_export_then_import_is_idempotent_by_id(
    one: LocalCluster, todo: Todo, tmp_path: Path
) -> None:
    a = new(todo, "Keep", "me", "+x", "--due", "2030-05-05")
    b = new(todo, "Done", "one")
    ok(todo("done", b))
    dump = ok(todo("export")).out
    lines = [json.loads(x) for x in dump.splitlines()]
    mine = {t["id"]: t for t in lines if t["id"] in (a, b)}
    assert set(mine[a]) == {"id", "text", "status", "created", "updated", "due", "tags"}
    (tmp_path / "tasks.jsonl").write_text(dump)
    # The two are deleted, then the export is imported twice.
    ok(todo("delete", a, b))
    first = ok(todo("import", str(tmp_path / "tasks.jsonl"))).out
    assert "2 created" in first, first
    again = ok(todo("import", str(tmp_path / "tasks.jsonl"))).out
    assert "0 created, 0 changed" in again, again
    back = ok(todo("--json", "show", a, b)).out.splitlines()
    assert [json.loads(x)["status"] for x in back] == ["open", "complete"]
    assert json.loads(back[0])["tags"] == ["x"] and json.loads(back[0])["due"] == "2030-05-05"


def test_a_malformed_import_changes_nothing_and_names_the_line(todo: Todo, tmp_path: Path) -> None:
    before = ok(todo("export")).out
    good = json.dumps(
        {
            "id": "0000aaaa0000",
            "text": "x",
            "status": "open",
            "created": "2026-01-01T00:00:00.000Z",
            "updated": "2026-01-01T00:00:00.000Z",
            "due": None,
            "tags": [],
        }
    )
    (tmp_path / "bad.jsonl").write_text(good + "\n\n{not json\n")
    err = fails(todo("import", str(tmp_path / "bad.jsonl")), 2, "ErrSyntaxInvalidArgs")
    assert "bad.jsonl line 3" in err
    assert ok(todo("export")).out == before


def test_session_reset_forgets_the_token(todo: Todo) -> None:
    new(todo, "something")
    assert todo.session_file.exists() and todo.url in todo.session_file.read_text()
    assert ok(todo("session", "reset")).out.startswith("Forgot the session token for")
    assert todo.url not in todo.session_file.read_text()
    assert ok(todo("session", "reset")).out.startswith("No session token was kept")


def test_version_completion_and_help(todo: Todo) -> None:
    assert ok(todo("--version")).out.startswith("todo (dtm) ")
    for shell in ("bash", "zsh", "fish"):
        script = ok(todo("completion", shell)).out
        assert "show" in script and "todo list --ids" in script
    bash = shutil.which("bash")
    if bash is not None:
        check = subprocess.run(
            [bash, "-n"], input=ok(todo("completion", "bash")).out, text=True, timeout=10
        )
        assert check.returncode == 0
    top = ok(todo("help")).out
    assert "ErrPayloadTooLarge" in top and "--node NAME" in top
    assert "--json" not in ok(todo("help", "--help")).out  # help offers only what it does
    status_help = ok(todo("cluster", "status", "--help")).out
    assert "Rule:" not in status_help and "`show`" not in status_help


def test_due_dates_and_tags_reach_every_node_through_the_sync(tmp_path: Path) -> None:
    with running(
        tmp_path / "c", ("balancer", "handler", "sync"), nodes=2, sections={"sync": FAST_SYNC}
    ) as c:
        todo = Todo(tmp_path / "home", c.url("handler"), c.user_token)
        task_id = new(todo, "Pay", "rent", "+home", "--due", "2031-12-31")
        rows = converged(c)
        value = next(json.loads(v[2]) for k, v in rows.items() if k.endswith(task_id))
        assert value["due"] == "2031-12-31" and value["tags"] == ["home"]
        for node in c.node_names:  # and each node's handler reads it back
            got = ok(todo("--node", node, "--json", "show", task_id)).json()
            assert got["due"] == "2031-12-31"


def test_a_create_under_an_existing_id_answers_that_task_unchanged(one: LocalCluster) -> None:
    from dtm.cli.client import TaskClient
    from dtm.cli.transport import parse_url

    client = TaskClient(parse_url(one.url("handler")), user_token=one.user_token)
    first = client.create("Original", "2030-01-01", ["a"], task_id="0123456789ab")
    again = client.create("Other text", None, [], task_id="0123456789ab")
    assert again == first and client.get("0123456789ab").text == "Original"
