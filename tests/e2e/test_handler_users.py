"""Users at the request handler, against real processes (nodes, balancer, handler): every task
route needs a user's token, and each user sees and changes only their own tasks.

The users are made with the real `dtm user` command on the cluster's users file; the handler
picks changes up without a restart.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.harness import LocalCluster, Response, request, running, wait_until


def dtm_user(c: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "dtm.run", "user", *args, "--config", str(c.config_path)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


class Client:
    """One user's view of the handler: its token and its session."""

    def __init__(self, c: LocalCluster, token: str | None) -> None:
        self.url = c.url("handler")
        self.token = token
        self.session = ""

    def call(self, method: str, path: str, body: Any = None) -> Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token is not None else {}
        if self.session:
            headers["X-Dtm-Session"] = self.session
        resp = request(method, self.url + path, body, headers, auth=False)
        self.session = resp.headers.get("x-dtm-session", self.session)
        return resp

    def create(self, text: str) -> str:
        resp = self.call("POST", "/v1/tasks", {"text": text})
        assert resp.status == 201, resp
        task_id: str = resp.json()["id"]
        return task_id

    def ids(self) -> set[str]:
        resp = self.call("GET", "/v1/tasks")
        assert resp.status == 200, resp
        return {item[0] for item in resp.json()["tasks"]}  # a TaskPage item is [id, text, ...]


def add_user(c: LocalCluster, name: str) -> Client:
    run = dtm_user(c, "add", name)
    assert run.returncode == 0, run.stderr
    client = Client(c, run.stdout.strip())
    # The handler re-reads the users file within about a second.
    wait_until(lambda: client.call("GET", "/v1/tasks").status == 200, 10, 0.05, f"{name} known")
    return client


def unauthorized(resp: Response) -> None:
    assert resp.status == 401, resp
    assert resp.json()["error"] == "ErrUnauthorized"
    assert resp.headers["www-authenticate"].startswith("Bearer")


def not_found(resp: Response) -> None:
    assert resp.status == 404, resp
    assert resp.json()["error"] == "ErrNoDataFound"


@pytest.fixture(scope="module")
def one(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with running(Path(tmp_path_factory.mktemp("handler_users")), nodes=1) as c:
        yield c


def test_every_task_route_needs_a_valid_token(one: LocalCluster) -> None:
    for token in (None, "garbage", "dtmu_" + "A" * 43, ""):
        client = Client(one, token)
        unauthorized(client.call("GET", "/v1/tasks"))
        unauthorized(client.call("POST", "/v1/tasks", {"text": "x"}))
        unauthorized(client.call("GET", "/v1/tasks/abcd"))
        unauthorized(client.call("PATCH", "/v1/tasks/abcd", {"status": "complete"}))
        unauthorized(client.call("DELETE", "/v1/tasks/abcd"))
    # Another scheme, or the cluster secret, is no user token either.
    url = one.url("handler") + "/v1/tasks"
    unauthorized(request("GET", url, headers={"Authorization": f"Basic {one.user_token}"}))
    unauthorized(request("GET", url, headers={"Authorization": one.auth_header}))
    # Probes and the API document stay open.
    assert request("GET", one.url("handler") + "/healthz", auth=False).status == 200
    assert request("GET", one.url("handler") + "/openapi.json", auth=False).status == 200


def test_two_users_never_see_each_others_tasks(one: LocalCluster) -> None:
    alice, bob = add_user(one, "alice"), add_user(one, "bob")
    a_ids = {alice.create(f"alice {i}") for i in range(3)}
    b_ids = {bob.create(f"bob {i}") for i in range(3)}
    assert alice.ids() == a_ids and bob.ids() == b_ids
    for me, other_ids in ((alice, b_ids), (bob, a_ids)):
        for task_id in other_ids:
            # Every route answers a foreign task exactly like a missing one, by ID or prefix.
            for ref in (task_id, task_id[:4], task_id[:8]):
                not_found(me.call("GET", f"/v1/tasks/{ref}"))
                not_found(me.call("PATCH", f"/v1/tasks/{ref}", {"status": "complete"}))
                not_found(me.call("PATCH", f"/v1/tasks/{ref}", {"text": "taken over"}))
                not_found(me.call("DELETE", f"/v1/tasks/{ref}"))
    # Nothing was changed by the attempts: each still has its own tasks, untouched.
    for me, ids, name in ((alice, a_ids, "alice"), (bob, b_ids, "bob")):
        items = me.call("GET", "/v1/tasks").json()["tasks"]  # [id, text, status, ...] each
        assert all(item[2] == "open" for item in items)  # [id, text, status, ...]
        assert {item[0] for item in items} == ids
        assert all(item[1].startswith(name) for item in items)
    # Task IDs are bare; the stored key carries the user.
    some = next(iter(a_ids))
    assert request("GET", f"{one.url('store1')}/v1/kv/alice.{some}").status == 200
    # Each user's own operations still work.
    task_id = next(iter(b_ids))
    assert bob.call("PATCH", f"/v1/tasks/{task_id[:6]}", {"status": "complete"}).status == 200
    assert bob.call("DELETE", f"/v1/tasks/{task_id}").status == 200
    assert bob.ids() == b_ids - {task_id}
    assert alice.ids() == a_ids


def test_a_prefix_is_resolved_only_among_the_users_own_tasks(one: LocalCluster) -> None:
    """A prefix two users' tasks share is unique for each (no ErrAmbiguousID across users)."""
    carol, dave = add_user(one, "carol"), add_user(one, "dave")
    twin = "q7q7q7q7q7q7"
    value = b'{"text":"%s","status":"open","created":"2020-01-01T00:00:00.000Z",'
    value += b'"updated":"2020-01-01T00:00:00.000Z"}'
    for user in ("carol", "dave"):
        body = b'{"value":' + (value % user.encode()) + b"}"
        resp = request("PUT", f"{one.url('store1')}/v1/kv/{user}.{twin}", body)
        assert resp.status == 200, resp
    for client, user in ((carol, "carol"), (dave, "dave")):
        resp = client.call("GET", f"/v1/tasks/{twin[:4]}")
        assert resp.status == 200, resp
        assert resp.json() == {**resp.json(), "id": twin, "text": user}


def test_a_removed_users_token_stops_working(one: LocalCluster) -> None:
    erin = add_user(one, "erin")
    erin.create("before removal")
    run = dtm_user(one, "remove", "erin")
    assert run.returncode == 0, run.stderr
    wait_until(lambda: erin.call("GET", "/v1/tasks").status == 401, 10, 0.05, "erin refused")
    unauthorized(erin.call("POST", "/v1/tasks", {"text": "after removal"}))
    # A new user of the same name gets a new token; the old one stays refused.
    again = add_user(one, "erin")
    assert again.token != erin.token
    unauthorized(erin.call("GET", "/v1/tasks"))
