"""Out-of-range wire fields, sent to real processes: a 400 whose message names the field's path,
and nothing stored or merged."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from tests.harness import LocalCluster, request

EPOCH = "0123456789abcdef"


def _row(**over: Any) -> dict[str, Any]:
    row = {"key": "c:1", "value": 1, "deleted": False, "version": 1, "hlc": 5, "origin": "store9"}
    return row | over


def _batch(*rows: dict[str, Any], **over: Any) -> dict[str, Any]:
    return {"source": "store9", "epoch": EPOCH, "source_version": 1, "rows": list(rows)} | over


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/v1/replicate", _batch(_row(), _row(key="c:2", hlc=2**63)), "$.rows[1].hlc"),
        ("/v1/replicate", _batch(_row(version=-3)), "$.rows[0].version"),
        ("/v1/replicate", _batch(_row(key="c 1")), "$.rows[0].key"),
        ("/v1/replicate", _batch(_row(origin="")), "$.rows[0].origin"),
        ("/v1/replicate", _batch(_row(), epoch=""), "$.epoch"),
        ("/v1/replicate", _batch(_row(), source_version=2**64), "$.source_version"),
        (
            "/v1/purge",
            {"rows": [{"key": "c:1", "hlc": 2**63, "origin": "store9"}]},
            "$.rows[0].hlc",
        ),
    ],
)
def test_a_node_refuses_an_out_of_range_field_naming_it(
    cluster: Callable[..., LocalCluster], path: str, body: dict[str, Any], field: str
) -> None:
    c = cluster(nodes=1)
    c.start("store1")
    url = c.url("store1")
    r = request("POST", url + path, body)
    assert r.status == 400, r
    assert r.json()["error"] == "ErrSyntaxInvalidArgs" and f"`{field}`" in r.json()["message"]
    status = request("GET", url + "/v1/status").json()
    assert status["last_version"] == 0 and status["hlc"] == 0  # nothing stored, nothing merged


def test_a_session_token_out_of_range_is_refused_by_node_and_handler(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=1)
    c.start_nodes()
    c.start("balancer")
    c.start("handler")
    token = {"X-Dtm-Session": json.dumps({"hlc": 10**19})}
    node = request("GET", c.url("store1") + "/v1/kv/c:1", headers=token)
    assert node.status == 400 and "`$.hlc`" in node.json()["message"], node
    handler = request("GET", c.url("handler") + "/v1/tasks", headers=token)
    assert handler.status == 400 and "`$.hlc`" in handler.json()["message"], handler
    bad_epoch = {
        "X-Dtm-Session": json.dumps({"versions": {"store1": 1}, "epochs": {"store1": "x"}})
    }
    node = request("GET", c.url("store1") + "/v1/kv/c:1", headers=bad_epoch)
    assert node.status == 400 and "`$.epochs[...]`" in node.json()["message"], node
