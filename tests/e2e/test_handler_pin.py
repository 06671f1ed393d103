"""`X-Dtm-Node`: a request pinned to a data node is served by that node only, through the handler
and the balancer; an unknown or malformed name is 400, a pinned node that is down 503, never
another node. Two nodes and no sync, so where a write landed shows which node took it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.harness import LocalCluster, request, running

PIN = "X-Dtm-Node"


@pytest.fixture(scope="module")
def c(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with running(Path(tmp_path_factory.mktemp("pin")), nodes=2) as cluster:
        yield cluster


def test_the_balancer_sends_a_pinned_request_to_that_node_only(c: LocalCluster) -> None:
    for name in ("store2", "store1"):
        for _ in range(4):  # more than the node count: round-robin would have moved on
            resp = request("GET", c.url("balancer") + "/v1/kv/p:1", headers={PIN: name})
            assert resp.status == 404 and resp.headers["x-dtm-upstream"] == name, resp


def test_a_pinned_write_through_the_handler_lands_on_that_node(c: LocalCluster) -> None:
    for name, other in (("store2", "store1"), ("store1", "store2")):
        for _ in range(3):
            made = request("POST", c.url("handler") + "/v1/tasks", {"text": "p"}, {PIN: name})
            assert made.status == 201, made
            key = f"/v1/kv/tester.{made.json()['id']}"
            assert request("GET", c.url(name) + key).status == 200
            assert request("GET", c.url(other) + key).status == 404
            got = request(
                "GET", c.url("handler") + f"/v1/tasks/{made.json()['id']}", None, {PIN: name}
            )
            assert got.status == 200 and got.json() == made.json(), got


@pytest.mark.parametrize("value", ["no/such", "a" * 65, "", "store 1"])
def test_a_malformed_node_name_is_400(c: LocalCluster, value: str) -> None:
    for url in (c.url("handler") + "/v1/tasks", c.url("balancer") + "/v1/kv"):
        resp = request("GET", url, headers={PIN: value})
        assert resp.status == 400, (url, resp)
        assert resp.json()["error"] == "ErrSyntaxInvalidArgs"


def test_a_node_that_is_not_in_the_cluster_is_503_naming_the_nodes(c: LocalCluster) -> None:
    for url in (c.url("handler") + "/v1/tasks", c.url("balancer") + "/v1/kv"):
        resp = request("GET", url, headers={PIN: "store9"})
        assert resp.status == 503 and resp.json()["error"] == "ErrUnavailable", (url, resp)
        assert "no data node named 'store9'" in resp.json()["message"]
        assert "store1, store2" in resp.json()["message"]


def test_a_pinned_node_that_is_down_is_503_and_no_other_node_serves_it(
    c: LocalCluster,
) -> None:
    c.procs["store2"].stop()
    try:
        made = request("POST", c.url("handler") + "/v1/tasks", {"text": "x"}, {PIN: "store2"})
        assert made.status == 503 and made.json()["error"] == "ErrUnavailable", made
        assert "store2" in made.json()["message"]
        resp = request("GET", c.url("balancer") + "/v1/kv/p:1", headers={PIN: "store2"})
        assert resp.status == 503 and resp.json()["error"] == "ErrUnavailable", resp
        # Unpinned requests still go to the node that is up.
        ok = request("POST", c.url("handler") + "/v1/tasks", {"text": "x"})
        assert ok.status == 201, ok
    finally:
        c.start("store2")
