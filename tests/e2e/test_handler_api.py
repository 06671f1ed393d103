"""The request handler's task API against real processes: one data node, the load balancer and
the handler. Every endpoint, every error, the OpenAPI document against what the handler answers.

One node, so that every read sees every write without a sync process; the session guarantees
over several nodes are tested in test_handler_sessions.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from tests.harness import LocalCluster, Response, request, running

ID = re.compile(r"^[0-9a-hjkmnp-tv-z]{12}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class Api:
    """The handler's URL, a node's URL, and the session token carried between calls."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.url = cluster.url("handler")
        self.node = cluster.url("store1")
        self.token = ""

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        hdrs = {"X-Dtm-Session": self.token} if self.token else {}
        hdrs.update(headers or {})
        resp = request(method, self.url + path, body, hdrs)
        if "x-dtm-session" in resp.headers:
            self.token = resp.headers["x-dtm-session"]
        return resp

    def create(self, text: str) -> dict[str, Any]:
        resp = self.call("POST", "/v1/tasks", {"text": text})
        assert resp.status == 201, resp
        task: dict[str, Any] = resp.json()
        return task

    def node_put(self, key: str, value: bytes, user: str | None = "tester") -> None:
        """Write a row straight to the data node (to shape the data: chosen IDs, bad values),
        under ``user``'s key prefix (the test user's, by default; None: the bare key)."""
        full = key if user is None else f"{user}.{key}"
        resp = request("PUT", f"{self.node}/v1/kv/{full}", b'{"value":' + value + b"}")
        assert resp.status == 200, resp


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with running(Path(tmp_path_factory.mktemp("handler_api")), nodes=1) as c:
        yield Api(c)
        # No request of this module may have been answered with a 500.
        metrics = request("GET", c.url("handler") + "/metrics").body.decode()
        assert 'status="500"' not in metrics


FIELDS = ("id", "text", "status", "created", "updated", "due", "tags")  # a TaskPage item


def listed(resp: Response) -> list[dict[str, Any]]:
    """The tasks of a list answer, each as a dict."""
    assert resp.status == 200, resp
    body = resp.json()
    assert set(body) == {"tasks", "next"}, body
    return [dict(zip(FIELDS, item, strict=True)) for item in body["tasks"]]


def err(resp: Response, status: int, name: str) -> dict[str, Any]:
    assert resp.status == status, resp
    body: dict[str, Any] = resp.json()
    assert body["error"] == name, body
    assert isinstance(body["message"], str) and body["message"]
    assert resp.headers["content-type"].startswith("application/json")
    return body


def task_value(text: str, status: str = "open", created: str = "2020-01-01T00:00:00.000Z") -> bytes:
    return json.dumps(
        {"text": text, "status": status, "created": created, "updated": created}
    ).encode()


# ---------------------------------------------------------------- create, get, list


def test_create_returns_the_task_and_a_session(api: Api) -> None:
    resp = api.call("POST", "/v1/tasks", {"text": "  Buy groceries  "})
    assert resp.status == 201, resp
    task = resp.json()
    assert ID.match(task["id"])
    assert task["text"] == "Buy groceries"
    assert task["status"] == "open"
    assert TIME.match(task["created"]) and task["updated"] == task["created"]
    token = json.loads(resp.headers["x-dtm-session"])
    assert token["versions"]["store1"] >= 1 and token["hlc"] > 0


@pytest.mark.parametrize(
    "text",
    [
        'say "hi"',
        "back\\slash \\n",
        "日本語のタスク ✓ 🎉",
        "-leading dash",
        "--",
        "it's",
        "x" * 1000,
    ],
)
def test_text_round_trips_exactly(api: Api, text: str) -> None:
    task = api.create(text)
    assert task["text"] == text
    got = api.call("GET", f"/v1/tasks/{task['id']}")
    assert got.status == 200 and got.json() == task


def test_get_by_full_id_prefix_and_any_case(api: Api) -> None:
    task = api.create("find me")
    for ref in (task["id"], task["id"][:8], task["id"].upper()):
        resp = api.call("GET", f"/v1/tasks/{ref}")
        assert resp.status == 200 and resp.json() == task, (ref, resp)


def test_list_is_in_id_order_with_every_field(api: Api) -> None:
    a = api.create("list a")
    b = api.create("list b")
    api.create("list c")
    assert api.call("PATCH", f"/v1/tasks/{b['id']}", {"status": "complete"}).status == 200
    resp = api.call("GET", "/v1/tasks")
    tasks = listed(resp)
    assert resp.json()["next"] is None
    ids = [t["id"] for t in tasks]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    by_id = {t["id"]: t for t in tasks}
    assert by_id[a["id"]] == a
    assert by_id[b["id"]]["status"] == "complete"


def test_list_skips_rows_that_are_not_tasks(api: Api) -> None:
    api.node_put("notatask:1", b'{"text": "no"}')
    api.node_put("bad000000000", b'{"text": "missing fields"}')
    api.node_put("bad000000001", b'"just a string"')
    api.node_put("bad000000002", task_value("a task, but under no user"), user=None)
    ids = [t["id"] for t in listed(api.call("GET", "/v1/tasks"))]
    assert not {"notatask:1", "bad000000000", "bad000000001", "bad000000002"} & set(ids)
    err(api.call("GET", "/v1/tasks/bad000000000"), 404, "ErrNoDataFound")
    err(api.call("GET", "/v1/tasks/bad000000001"), 404, "ErrNoDataFound")
    err(api.call("GET", "/v1/tasks/bad000000002"), 404, "ErrNoDataFound")
    status = api.call("GET", "/v1/status").json()
    assert status["invalid_rows"] >= 2


def test_list_pages_through_many_tasks(api: Api) -> None:
    # More rows than one page of the handler's scan (2,000), written straight to the node.
    import asyncio

    import aiohttp

    async def fill() -> None:
        async with aiohttp.ClientSession() as http:
            sem = asyncio.Semaphore(32)

            async def put(i: int) -> None:
                async with sem:
                    body = b'{"value":' + task_value(f"bulk {i}") + b"}"
                    url = f"{api.node}/v1/kv/tester.page{i:08d}"
                    auth = {"Authorization": api.cluster.auth_header}
                    async with http.put(url, data=body, headers=auth) as r:
                        assert r.status == 200

            await asyncio.gather(*(put(i) for i in range(2100)))

    asyncio.run(fill())
    ids = [t["id"] for t in listed(api.call("GET", "/v1/tasks"))]
    bulk = [i for i in ids if i.startswith("page")]
    assert len(bulk) == len(set(bulk)) == 2100


def test_list_pages_by_limit_and_cursor(api: Api) -> None:
    for i in range(7):
        api.create(f"paged {i}")
    whole = [t["id"] for t in listed(api.call("GET", "/v1/tasks"))]
    assert len(whole) >= 7
    paged: list[str] = []
    query = "limit=3"
    while True:
        resp = api.call("GET", f"/v1/tasks?{query}")
        page = listed(resp)
        assert 0 < len(page) <= 3 or (not page and resp.json()["next"] is None)
        paged += [t["id"] for t in page]
        nxt = resp.json()["next"]
        if nxt is None:
            break
        assert nxt == page[-1]["id"]
        query = f"limit=3&after={nxt}"
    assert paged == whole


def test_a_list_longer_than_a_node_page_is_streamed_whole(api: Api) -> None:
    # A list over one node page (2,000 rows) is streamed, chunked, page by page.
    resp = api.call("GET", "/v1/tasks")
    ids = [t["id"] for t in listed(resp)]
    if len(ids) <= 2000:
        pytest.skip("needs test_list_pages_through_many_tasks first")
    assert resp.headers.get("transfer-encoding") == "chunked"
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    assert resp.json()["next"] is None


# ---------------------------------------------------------------- references


def test_short_reference_is_a_syntax_error(api: Api) -> None:
    for ref in ("1", "abc"):
        body = err(api.call("GET", f"/v1/tasks/{ref}"), 400, "ErrSyntaxInvalidArgs")
        assert "at least 4" in body["message"]
    err(api.call("GET", "/v1/tasks/abcu"), 400, "ErrSyntaxInvalidArgs")
    err(api.call("GET", "/v1/tasks/" + "a" * 13), 400, "ErrSyntaxInvalidArgs")
    err(api.call("DELETE", "/v1/tasks/1"), 400, "ErrSyntaxInvalidArgs")
    err(api.call("PATCH", "/v1/tasks/1", {"status": "complete"}), 400, "ErrSyntaxInvalidArgs")


def test_unknown_reference_is_not_found(api: Api) -> None:
    body = err(api.call("GET", "/v1/tasks/yyy1"), 404, "ErrNoDataFound")
    assert body["message"] == "no task with ID 'yyy1'"
    err(api.call("GET", "/v1/tasks/yyy1yyy1yyy1"), 404, "ErrNoDataFound")
    err(api.call("PATCH", "/v1/tasks/yyy1", {"status": "open"}), 404, "ErrNoDataFound")
    err(api.call("DELETE", "/v1/tasks/yyy1yyy1yyy1"), 404, "ErrNoDataFound")


def test_ambiguous_prefix_lists_the_candidates(api: Api) -> None:
    ids = ["qqqq00000001", "qqqq00000002", "qqqr00000003"]
    for i in ids:
        api.node_put(i, task_value(f"twin {i}"))
    for method, body in (("GET", None), ("PATCH", {"status": "complete"}), ("DELETE", None)):
        resp = api.call(method, "/v1/tasks/qqqq", body)
        got = err(resp, 409, "ErrAmbiguousID")
        assert got["candidates"] == ids[:2]
        assert "qqqq00000001" in got["message"]
    # One more character makes it unique; the non-matching neighbour is never a candidate.
    assert api.call("GET", "/v1/tasks/qqqq00000002").json()["text"] == "twin qqqq00000002"
    assert api.call("GET", "/v1/tasks/qqqr").json()["id"] == "qqqr00000003"


def test_many_matches_are_capped(api: Api) -> None:
    for n in range(12):
        api.node_put(f"mmmm{n:08d}", task_value("many"))
    got = err(api.call("GET", "/v1/tasks/mmmm"), 409, "ErrAmbiguousID")
    assert len(got["candidates"]) == 10
    assert "…" in got["message"]


# ---------------------------------------------------------------- update and delete


def test_update_status_and_text(api: Api) -> None:
    task = api.create("to update")
    ref = task["id"][:6]
    done = api.call("PATCH", f"/v1/tasks/{ref}", {"status": "complete"})
    assert done.status == 200, done
    assert done.json()["status"] == "complete" and done.json()["updated"] >= task["updated"]
    both = api.call("PATCH", f"/v1/tasks/{ref}", {"status": "open", "text": ' new "text" '})
    assert both.status == 200
    assert (both.json()["status"], both.json()["text"]) == ("open", 'new "text"')
    assert both.json()["created"] == task["created"]
    assert api.call("GET", f"/v1/tasks/{ref}").json() == both.json()
    # The same update again changes nothing and is still 200 (idempotent).
    again = api.call("PATCH", f"/v1/tasks/{ref}", {"status": "open"})
    assert again.status == 200 and again.json() == both.json()


@pytest.mark.parametrize(
    ("body", "status", "name"),
    [
        ({}, 400, "ErrSyntaxInvalidArgs"),
        ({"status": "done"}, 400, "ErrSyntaxInvalidArgs"),
        ({"status": None, "text": None}, 400, "ErrSyntaxInvalidArgs"),
        ({"text": ""}, 400, "ErrSyntaxInvalidArgs"),
        ({"text": "a\tb"}, 400, "ErrSyntaxInvalidArgs"),
        ({"text": "x" * 1001}, 413, "ErrPayloadTooLarge"),
        ({"status": "open", "extra": 1}, 400, "ErrSyntaxInvalidArgs"),
        ([], 400, "ErrSyntaxInvalidArgs"),
        ("not json", 400, "ErrSyntaxInvalidArgs"),
    ],
)
def test_bad_updates(api: Api, body: Any, status: int, name: str) -> None:
    task = api.create("bad updates")
    err(api.call("PATCH", f"/v1/tasks/{task['id']}", body), status, name)
    assert api.call("GET", f"/v1/tasks/{task['id']}").json() == task


def test_delete_then_gone(api: Api) -> None:
    task = api.create("to delete")
    resp = api.call("DELETE", f"/v1/tasks/{task['id'][:5]}")
    assert resp.status == 200, resp
    assert resp.json() == {"id": task["id"], "deleted": True}
    err(api.call("GET", f"/v1/tasks/{task['id']}"), 404, "ErrNoDataFound")
    err(api.call("DELETE", f"/v1/tasks/{task['id']}"), 404, "ErrNoDataFound")
    ids = [t["id"] for t in listed(api.call("GET", "/v1/tasks"))]
    assert task["id"] not in ids


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("body", "status", "name"),
    [
        ({"text": ""}, 400, "ErrSyntaxInvalidArgs"),
        ({"text": "   "}, 400, "ErrSyntaxInvalidArgs"),
        ({"text": "x" * 1001}, 413, "ErrPayloadTooLarge"),
        ({"text": "line\nbreak"}, 400, "ErrSyntaxInvalidArgs"),
        ({"text": "tab\there"}, 400, "ErrSyntaxInvalidArgs"),
        ({"text": "nul\x00"}, 400, "ErrSyntaxInvalidArgs"),
        ({"text": "c1\x85"}, 400, "ErrSyntaxInvalidArgs"),
        ({"text": "esc\x1b[31m"}, 400, "ErrSyntaxInvalidArgs"),
        ({"text": 5}, 400, "ErrSyntaxInvalidArgs"),
        ({}, 400, "ErrSyntaxInvalidArgs"),
        ({"text": "a", "owner": "abcdabcdabcd"}, 400, "ErrSyntaxInvalidArgs"),
        ({"text": "a", "id": "abcd"}, 400, "ErrSyntaxInvalidArgs"),
        ({"text": "a", "due": "2026-02-30"}, 400, "ErrSyntaxInvalidArgs"),
        ({"text": "a", "tags": ["Not a tag"]}, 400, "ErrSyntaxInvalidArgs"),
        ("", 400, "ErrSyntaxInvalidArgs"),
        ("{", 400, "ErrSyntaxInvalidArgs"),
        (b"\xff\xfe", 400, "ErrSyntaxInvalidArgs"),
        (json.dumps({"text": "x" * 17000}), 413, "ErrPayloadTooLarge"),
    ],
)
def test_bad_creates(api: Api, body: Any, status: int, name: str) -> None:
    got = err(api.call("POST", "/v1/tasks", body), status, name)
    if "\n" in str(body) or "\t" in str(body):
        assert "control character" in got["message"]


def test_chunked_body_over_the_cap_is_413(api: Api) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", api.cluster.ports["handler"], timeout=10)
    try:
        chunks = (b'{"text": "' + b"x" * 4096 for _ in range(6))
        hdrs = {"Authorization": api.cluster.user_auth, "Content-Type": "application/json"}
        conn.request("POST", "/v1/tasks", body=chunks, headers=hdrs, encode_chunked=True)
        resp = conn.getresponse()
        assert resp.status == 413
        assert json.loads(resp.read())["error"] == "ErrPayloadTooLarge"
    finally:
        conn.close()


def test_bad_session_header_and_query(api: Api) -> None:
    for token in ("{", '{"versions": {"a": "x"}}', '{"nope": 1}', '{"hlc": -1}'):
        resp = request("GET", api.url + "/v1/tasks", headers={"X-Dtm-Session": token})
        err(resp, 400, "ErrSyntaxInvalidArgs")
    for query in (
        "limit=0",
        "limit=10001",
        "limit=x",
        "limit=%C2%B2",  # a digit, but not an ASCII one
        "limit=1&limit=2",
        "after=short",
        "after=UUUUUUUUUUUU",
        "sort=created",
    ):
        err(api.call("GET", f"/v1/tasks?{query}"), 400, "ErrSyntaxInvalidArgs")
    # An empty token is a new session.
    assert request("GET", api.url + "/v1/tasks", headers={"X-Dtm-Session": "{}"}).status == 200


def test_unknown_path_and_wrong_method(api: Api) -> None:
    err(api.call("GET", "/v2/nothing"), 404, "ErrNoDataFound")
    err(api.call("PUT", "/v1/tasks"), 405, "ErrSyntaxInvalidArgs")
    err(api.call("POST", "/v1/tasks/abcd", {"text": "x"}), 405, "ErrSyntaxInvalidArgs")


# ---------------------------------------------------------------- service pages


def test_health_status_metrics(api: Api) -> None:
    health = api.call("GET", "/healthz")
    assert health.status == 200
    assert health.json()["status"] == "ok" and health.json()["component"] == "handler"
    status = api.call("GET", "/v1/status").json()
    assert status["component"] == "handler"
    assert status["balancer"] == api.cluster.url("balancer")
    assert status["requests"] > 0 and status["upstream_requests"] > 0
    metrics = api.call("GET", "/metrics")
    assert metrics.status == 200
    text = metrics.body.decode()
    assert "dtm_handler_requests_total" in text
    assert 'route="/v1/tasks/{ref}"' in text
    assert "dtm_handler_upstream_seconds_bucket" in text


def test_openapi_document_is_valid_and_matches_answers(api: Api) -> None:
    resp = api.call("GET", "/openapi.json")
    assert resp.status == 200
    doc = resp.json()
    validate_spec(doc)
    assert doc["openapi"].startswith("3.1")

    def check(path: str, method: str, got: Response) -> None:
        op = doc["paths"][path][method.lower()]
        spec = op["responses"].get(str(got.status))
        assert spec is not None, f"{method} {path} answered {got.status}, not in the document"
        media = got.headers["content-type"].split(";")[0]
        schema = spec["content"][media]["schema"]
        if media == "application/json":
            root = {**schema, "components": doc["components"]}
            Draft202012Validator(root).validate(got.json())

    task = api.create("openapi")
    tid = task["id"]
    calls: list[tuple[str, str, str, Any]] = [
        ("/v1/tasks", "POST", "/v1/tasks", {"text": "documented"}),
        ("/v1/tasks", "POST", "/v1/tasks", {"text": ""}),
        ("/v1/tasks", "POST", "/v1/tasks", {"text": "x" * 1001}),
        ("/v1/tasks", "GET", "/v1/tasks", None),
        ("/v1/tasks/{ref}", "GET", f"/v1/tasks/{tid}", None),
        ("/v1/tasks/{ref}", "GET", "/v1/tasks/yyy2", None),
        ("/v1/tasks/{ref}", "GET", "/v1/tasks/qqqq", None),
        ("/v1/tasks/{ref}", "GET", "/v1/tasks/ab", None),
        ("/v1/tasks/{ref}", "PATCH", f"/v1/tasks/{tid}", {"status": "complete"}),
        ("/v1/tasks/{ref}", "DELETE", f"/v1/tasks/{tid}", None),
        ("/healthz", "GET", "/healthz", None),
        ("/v1/status", "GET", "/v1/status", None),
        ("/metrics", "GET", "/metrics", None),
        ("/openapi.json", "GET", "/openapi.json", None),
    ]
    for path, method, url, body in calls:
        check(path, method, api.call(method, url, body))
    # Every operation the document names was exercised above.
    documented = {
        (p, m.upper()) for p, ops in doc["paths"].items() for m in ops if m != "parameters"
    }
    assert documented == {(p, m) for p, m, _, _ in calls}


# ---------------------------------------------------------------- the data tier is down


def test_balancer_down_is_unavailable_and_timeout_is_504(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    import signal

    c = LocalCluster(
        Path(tmp_path_factory.mktemp("handler_down")),
        nodes=1,
        sections={"handler": {"timeout_ms": 400}},
    )
    try:
        c.start("handler")  # nothing behind it yet
        url = c.url("handler")
        body = err(request("GET", url + "/v1/tasks"), 503, "ErrUnavailable")
        assert c.url("balancer") in body["message"]
        err(request("POST", url + "/v1/tasks", {"text": "x"}), 503, "ErrUnavailable")
        # A balancer with no node answering: its 503 passes through.
        c.start("balancer")
        body = err(request("POST", url + "/v1/tasks", {"text": "x"}), 503, "ErrUnavailable")
        # A balancer that accepts connections but never answers: 504 within the timeout.
        c.procs["balancer"].signal(signal.SIGSTOP)
        try:
            import time

            start = time.monotonic()
            err(request("GET", url + "/v1/tasks"), 504, "ErrTimeout")
            assert time.monotonic() - start < 3.0
        finally:
            c.procs["balancer"].signal(signal.SIGCONT)
    finally:
        c.stop_all()
