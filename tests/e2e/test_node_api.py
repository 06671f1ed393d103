"""The data node's HTTP API against a real `dtm node` process: every endpoint, every bad input."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.harness import LocalCluster, Response, request

MAX_VALUE = 1024
MAX_BATCH = 16 * 1024


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One node for the whole module (small limits, to test them cheaply); always stopped."""
    c = LocalCluster(
        Path(tmp_path_factory.mktemp("node_api")),
        nodes=1,
        node_options={"store1": {"max_value_bytes": MAX_VALUE, "max_batch_bytes": MAX_BATCH}},
    )
    try:
        c.start("store1")
        yield c.url("store1")
        # No request of this module may have been answered with a 500.
        metrics = request("GET", c.url("store1") + "/metrics").body.decode()
        assert 'status="500"' not in metrics
    finally:
        c.stop_all()


def call(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> Response:
    return request(method, url, body, headers)


def err(resp: Response, status: int, name: str) -> dict[str, Any]:
    assert resp.status == status, resp
    body: dict[str, Any] = resp.json()
    assert body["error"] == name, body
    assert isinstance(body["message"], str) and body["message"]
    assert resp.headers["content-type"].startswith("application/json")
    return body


def session_of(resp: Response) -> dict[str, Any]:
    token: dict[str, Any] = json.loads(resp.headers["x-dtm-session"])
    return token


# ------------------------------------------------------------------ key/value


def test_put_get_delete_roundtrip(node: str) -> None:
    r = call("PUT", f"{node}/v1/kv/rt:1", b'{"value": {"b": 1, "a": [1, 2, "x"]}}')
    assert r.status == 200, r
    row = r.json()
    assert row["key"] == "rt:1" and row["deleted"] is False and row["origin"] == "store1"
    assert row["value"] == {"b": 1, "a": [1, 2, "x"]}
    assert b'"value":{"b":1,"a":[1,2,"x"]}' in r.body  # stored canonical (compact)
    tok = session_of(r)
    assert tok["versions"] == {"store1": row["version"]} and tok["hlc"] == row["hlc"]
    assert list(tok["epochs"]) == ["store1"]

    g = call("GET", f"{node}/v1/kv/rt:1")
    assert g.status == 200 and g.json() == row
    assert session_of(g)["versions"]["store1"] >= row["version"]

    d = call("DELETE", f"{node}/v1/kv/rt:1")
    assert d.status == 200, d
    tomb = d.json()
    assert tomb["deleted"] is True and tomb["value"] is None
    assert tomb["version"] > row["version"] and tomb["hlc"] > row["hlc"]
    assert session_of(d)["versions"]["store1"] == tomb["version"]

    err(call("GET", f"{node}/v1/kv/rt:1"), 404, "ErrNoDataFound")
    err(call("DELETE", f"{node}/v1/kv/rt:1"), 404, "ErrNoDataFound")
    missing = call("GET", f"{node}/v1/kv/never-written")
    err(missing, 404, "ErrNoDataFound")
    assert "store1" in session_of(missing)["versions"]  # even a 404 carries the contribution


def test_put_observes_callers_stamp(node: str) -> None:
    ahead = time.time_ns() // 1_000_000 + 300  # ahead, within the 500 ms max offset
    seen = ahead << 16 | 7
    r = call("PUT", f"{node}/v1/kv/hlc:1", {"value": 1}, {"X-Dtm-Hlc": str(seen)})
    assert r.status == 200 and r.json()["hlc"] > seen
    later = call("PUT", f"{node}/v1/kv/hlc:2", {"value": 2})
    assert later.json()["hlc"] > r.json()["hlc"]
    status = call("GET", f"{node}/v1/status").json()
    assert status["hlc"] >= later.json()["hlc"]
    d = call("DELETE", f"{node}/v1/kv/hlc:1", headers={"X-Dtm-Hlc": str(seen + 100)})
    assert d.status == 200 and d.json()["hlc"] > seen + 100
    far = call(
        "PUT", f"{node}/v1/kv/hlc:3", {"value": 3}, {"X-Dtm-Hlc": str(seen + (60_000 << 16))}
    )
    assert far.status == 400 and call("GET", f"{node}/v1/status").json()["skew_events"] >= 1


def test_scan_pages_live_rows_in_key_order(node: str) -> None:
    for i in range(5):
        assert call("PUT", f"{node}/v1/kv/scan:{i}", {"value": i}).status == 200
    assert call("DELETE", f"{node}/v1/kv/scan:2").status == 200
    page = call("GET", f"{node}/v1/kv?after=scan:&limit=2").json()
    assert [r["key"] for r in page["rows"]] == ["scan:0", "scan:1"]
    assert page["next"] == "scan:1"
    page = call("GET", f"{node}/v1/kv?after=scan:1&limit=2").json()
    assert [r["key"] for r in page["rows"]] == ["scan:3", "scan:4"]
    page = call("GET", f"{node}/v1/kv?after=scan:4&limit=2").json()
    assert all(not r["key"].startswith("scan:") for r in page["rows"])
    everything = call("GET", f"{node}/v1/kv")
    assert everything.status == 200 and "x-dtm-session" in everything.headers
    keys = [r["key"] for r in everything.json()["rows"]]
    assert keys == sorted(keys) and "scan:2" not in keys and everything.json()["next"] is None


def test_changes_feed_order_limit_tombstones(node: str) -> None:
    start = call("GET", f"{node}/v1/status").json()["last_version"]
    call("PUT", f"{node}/v1/kv/feed:a", {"value": 1})
    call("PUT", f"{node}/v1/kv/feed:b", {"value": 2})
    call("PUT", f"{node}/v1/kv/feed:a", {"value": 3})
    call("DELETE", f"{node}/v1/kv/feed:b")
    r = call("GET", f"{node}/v1/changes?since={start}")
    assert r.status == 200
    page = r.json()
    assert page["node"] == "store1" and len(page["epoch"]) == 16
    assert [(x["key"], x["deleted"]) for x in page["rows"]] == [("feed:a", False), ("feed:b", True)]
    assert page["rows"][0]["value"] == 3
    assert [x["version"] for x in page["rows"]] == [start + 3, start + 4]
    assert page["last_version"] == start + 4
    assert session_of(r)["versions"] == {"store1": start + 4}
    one = call("GET", f"{node}/v1/changes?since={start}&limit=1").json()
    assert [x["key"] for x in one["rows"]] == ["feed:a"]
    empty = call("GET", f"{node}/v1/changes?since={start + 4}&wait=0").json()
    assert empty["rows"] == [] and empty["last_version"] >= start + 4


def test_changes_long_poll_times_out_empty(node: str) -> None:
    last = call("GET", f"{node}/v1/status").json()["last_version"]
    r = call("GET", f"{node}/v1/changes?since={last + 1000}&wait=150")
    assert r.status == 200 and r.json()["rows"] == []


# ------------------------------------------------------------------ replication and purge


def _row(
    key: str, value: Any, hlc: int, origin: str = "store9", deleted: bool = False
) -> dict[str, Any]:
    row = {"key": key, "value": value, "deleted": deleted, "version": 1}
    return {**row, "hlc": hlc, "origin": origin}


def _batch(rows: list[dict[str, Any]], version: int = 1, **kw: Any) -> dict[str, Any]:
    body = {
        "source": "store9",
        "epoch": "e9e9e9e9e9e9e9e9",
        "source_version": version,
        "rows": rows,
    }
    body.update(kw)
    return body


def test_replicate_merges_without_restamping(node: str) -> None:
    stamp = (call("GET", f"{node}/v1/status").json()["hlc"] >> 16) - 1000 << 16
    r = call("POST", f"{node}/v1/replicate", _batch([_row("rep:1", {"x": 1}, stamp)], 3))
    assert r.status == 200, r
    assert r.json()["applied"] == 1 and r.json()["ignored"] == 0
    got = call("GET", f"{node}/v1/kv/rep:1").json()
    assert (got["hlc"], got["origin"], got["value"]) == (stamp, "store9", {"x": 1})
    # An older write of the same key loses; the very same write again is ignored.
    again = _batch([_row("rep:1", {"x": 0}, stamp - 1), _row("rep:1", {"x": 1}, stamp)], 4)
    r2 = call("POST", f"{node}/v1/replicate", again).json()
    assert r2["applied"] == 0 and r2["ignored"] == 2
    assert r2["last_version"] == r.json()["last_version"]
    # A tombstone that is later wins.
    tomb = _row("rep:1", None, stamp + 1, deleted=True)
    assert call("POST", f"{node}/v1/replicate", _batch([tomb], 5)).json()["applied"] == 1
    err(call("GET", f"{node}/v1/kv/rep:1"), 404, "ErrNoDataFound")
    applied = call("GET", f"{node}/v1/status").json()["applied"]
    assert applied["store9"] == {"epoch": "e9e9e9e9e9e9e9e9", "version": 5}
    # Purge only the exact tombstone.
    wrong = {"rows": [{"key": "rep:1", "hlc": stamp, "origin": "store9"}]}
    assert call("POST", f"{node}/v1/purge", wrong).json() == {"purged": 0}
    exact = {"rows": [{"key": "rep:1", "hlc": stamp + 1, "origin": "store9"}]}
    assert call("POST", f"{node}/v1/purge", exact).json() == {"purged": 1}
    assert call("POST", f"{node}/v1/purge", exact).json() == {"purged": 0}


BAD_BATCHES = [
    pytest.param(_batch([_row("bad key", 1, 5)]), id="invalid-key"),
    pytest.param(_batch([_row("k", 1, 5, deleted=True)]), id="tombstone-with-value"),
    pytest.param(_batch([_row("k", None, 5)]), id="live-row-null"),
    pytest.param(_batch([{**_row("k", 1, 5), "version": -1}]), id="negative-version"),
    pytest.param(_batch([_row("k", 1, -5)]), id="negative-hlc"),
    pytest.param(_batch([_row("k", 1, 2**63)]), id="hlc-beyond-int64"),
    pytest.param(_batch([{**_row("k", 1, 5), "version": 2**64}]), id="version-beyond-int64"),
    pytest.param(_batch([], 2**63), id="source-version-beyond-int64"),
    pytest.param(_batch([_row("k", 1, 5, origin="")]), id="empty-origin"),
    pytest.param(_batch([{**_row("k", 1, 5), "extra": 1}]), id="extra-row-field"),
    pytest.param(_batch([], -1), id="negative-source-version"),
    pytest.param(_batch([], source=""), id="empty-source"),
    pytest.param(_batch([], source="store1"), id="from-itself"),
    pytest.param({"source": "store9", "rows": []}, id="missing-fields"),
    pytest.param([1, 2], id="not-an-object"),
]


@pytest.mark.parametrize("body", BAD_BATCHES)
def test_replicate_rejects_bad_batches_whole(node: str, body: Any) -> None:
    before = call("GET", f"{node}/v1/status").json()["last_version"]
    good_then_bad = body
    if isinstance(body, dict) and body.get("rows"):
        good_then_bad = {**body, "rows": [_row("ok:row", 1, 5), *body["rows"]]}
    err(call("POST", f"{node}/v1/replicate", good_then_bad), 400, "ErrSyntaxInvalidArgs")
    assert call("GET", f"{node}/v1/status").json()["last_version"] == before  # nothing applied
    err(call("GET", f"{node}/v1/kv/ok:row"), 404, "ErrNoDataFound")


def test_replicate_batch_over_cap(node: str) -> None:
    big = [_row(f"big:{i}", "x" * 900, 5) for i in range(20)]
    err(call("POST", f"{node}/v1/replicate", _batch(big)), 413, "ErrPayloadTooLarge")


@pytest.mark.parametrize(
    "body",
    [
        {"rows": [{"key": "bad key", "hlc": 1, "origin": "x"}]},
        {"rows": [{"key": "k", "hlc": -1, "origin": "x"}]},
        {"rows": [{"key": "k", "hlc": 2**63, "origin": "x"}]},
        {"rows": [{"key": "k", "hlc": 1, "origin": ""}]},
        {"rows": [{"key": "k", "hlc": 1}]},
        {"ids": []},
    ],
)
def test_purge_rejects_bad_bodies(node: str, body: Any) -> None:
    err(call("POST", f"{node}/v1/purge", body), 400, "ErrSyntaxInvalidArgs")


# ------------------------------------------------------------------ digests, status, metrics


def test_digest_and_bucket_rows(node: str) -> None:
    call("PUT", f"{node}/v1/kv/dig:1", {"value": 1})
    d = call("GET", f"{node}/v1/digest?buckets=8").json()
    assert d["node"] == "store1" and len(d["buckets"]) == 8
    assert all(len(h) == 16 for h in d["buckets"])
    assert len(call("GET", f"{node}/v1/digest").json()["buckets"]) == 256
    rows = []
    for b in range(8):
        r = call("GET", f"{node}/v1/digest/{b}?buckets=8")
        assert r.status == 200
        rows += r.json()["rows"]
        nonzero = d["buckets"][b] != "0" * 16
        assert nonzero == bool(r.json()["rows"])
    assert "dig:1" in {r["key"] for r in rows}
    for bad in ("buckets=0", "buckets=4097", "buckets=x", "buckets=-1", "other=1"):
        err(call("GET", f"{node}/v1/digest?{bad}"), 400, "ErrSyntaxInvalidArgs")
    for bad_path in ("8?buckets=8", "x", "-1", "4096"):
        err(call("GET", f"{node}/v1/digest/{bad_path}"), 400, "ErrSyntaxInvalidArgs")


def test_health_status_metrics(node: str) -> None:
    health = call("GET", f"{node}/healthz").json()
    assert health.pop("now_ms") > 0 and health == {
        "status": "ok",
        "component": "node",
        "name": "store1",
    }
    s = call("GET", f"{node}/v1/status").json()
    assert set(s) == {
        "node",
        "epoch",
        "last_version",
        "live_rows",
        "tombstones",
        "hlc",
        "skew_events",
        "applied",
        "fenced",
        "offsets",
    }
    m = call("GET", f"{node}/metrics")
    assert m.status == 200 and m.headers["content-type"].startswith("text/plain")
    text = m.body.decode()
    for name in (
        "dtm_node_http_requests_total",
        "dtm_node_http_request_duration_seconds_bucket",
        "dtm_node_writes_total",
        "dtm_node_longpoll_waiters",
        "dtm_node_skew_events_total",
        "dtm_node_last_version",
    ):
        assert name in text, name
    assert 'route="/v1/kv/{key}"' in text


# ------------------------------------------------------------------ bad input


BAD_KEYS = ["a%20b", "a%2Fb", "a/b", "x" * 129, "%C3%A9", ""]


@pytest.mark.parametrize("key", BAD_KEYS)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_invalid_keys(node: str, method: str, key: str) -> None:
    body = {"value": 1} if method == "PUT" else None
    err(call(method, f"{node}/v1/kv/{key}", body), 400, "ErrSyntaxInvalidArgs")


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"",
        b"{}",
        b'{"value": 1, "extra": 2}',
        b'{"val": 1}',
        b"[1]",
        b'{"value": null}',
        b'{"value": 1',
        b'{"value": \xff}',
        b'{"value": ' + b"[" * 1010 + b"]" * 1010 + b"}",  # nested deeper than the parser goes
    ],
)
def test_put_rejects_bad_bodies(node: str, body: bytes) -> None:
    err(call("PUT", f"{node}/v1/kv/body:1", body), 400, "ErrSyntaxInvalidArgs")
    err(call("GET", f"{node}/v1/kv/body:1"), 404, "ErrNoDataFound")  # no partial write


def test_deep_values_never_break_the_node(node: str) -> None:
    for depth in (900, 960, 980, 990, 1000):
        deep = b"[" * depth + b"]" * depth
        put = call("PUT", f"{node}/v1/kv/deep:{depth}", b'{"value": ' + deep + b"}")
        assert put.status in (200, 400, 413), put
        rep = _batch([{**_row("deep:r", None, 5), "value": "VALUE"}])
        body = json.dumps(rep).encode().replace(b'"VALUE"', deep)
        r = call("POST", f"{node}/v1/replicate", body)
        assert r.status in (200, 400), r
    assert call("GET", f"{node}/healthz").status == 200


def test_put_size_limits(node: str) -> None:
    fits = "x" * (MAX_VALUE - 2)  # the JSON string with its quotes is exactly the limit
    assert call("PUT", f"{node}/v1/kv/size:1", {"value": fits}).status == 200
    err(call("PUT", f"{node}/v1/kv/size:2", {"value": fits + "x"}), 413, "ErrPayloadTooLarge")
    spaced = b'{"value": [' + b" " * (MAX_VALUE + 2000) + b"1]}"
    err(call("PUT", f"{node}/v1/kv/size:3", spaced), 413, "ErrPayloadTooLarge")
    err(call("GET", f"{node}/v1/kv/size:2"), 404, "ErrNoDataFound")


@pytest.mark.parametrize(
    "query",
    [
        "since=-1",
        "since=abc",
        "since=1.5",
        "since=%2B1",
        "since=",
        "since=99999999999999999999",
        "limit=0",
        "limit=10001",
        "limit=-3",
        "limit=ten",
        "wait=60001",
        "wait=-1",
        "wait=1e3",
        "since=1&since=2",
        "cursor=5",
    ],
)
def test_changes_rejects_bad_query(node: str, query: str) -> None:
    err(call("GET", f"{node}/v1/changes?{query}"), 400, "ErrSyntaxInvalidArgs")


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=10001", "limit=x", "after=bad%20key", "after=a&after=b", "q=1"]
)
def test_scan_rejects_bad_query(node: str, query: str) -> None:
    err(call("GET", f"{node}/v1/kv?{query}"), 400, "ErrSyntaxInvalidArgs")


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("PUT", "/v1/kv/h:1", {"X-Dtm-Hlc": "abc"}),
        ("PUT", "/v1/kv/h:1", {"X-Dtm-Hlc": "-5"}),
        ("DELETE", "/v1/kv/h:1", {"X-Dtm-Hlc": "1.5"}),
        ("GET", "/v1/kv/h:1", {"X-Dtm-Wait": "10001"}),
        ("GET", "/v1/kv/h:1", {"X-Dtm-Wait": "soon"}),
        ("GET", "/v1/kv", {"X-Dtm-Session": "{not json"}),
        ("GET", "/v1/kv/h:1", {"X-Dtm-Session": '{"versions": {"a": "x"}}'}),
        ("GET", "/v1/changes", {"X-Dtm-Session": '{"unknown": 1}'}),
        ("GET", "/v1/changes", {"X-Dtm-Session": "[]"}),
    ],
)
def test_malformed_headers(node: str, method: str, path: str, headers: dict[str, str]) -> None:
    body = {"value": 1} if method == "PUT" else None
    err(call(method, node + path, body, headers), 400, "ErrSyntaxInvalidArgs")


@pytest.mark.parametrize("path", ["/", "/v1", "/v2/kv/a", "/v1/kvs", "/v1/changes/x", "/healthz/x"])
def test_unknown_path_is_json_404(node: str, path: str) -> None:
    err(call("GET", node + path), 404, "ErrNoDataFound")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/kv/a"),
        ("PATCH", "/v1/kv/a"),
        ("POST", "/v1/kv"),
        ("PUT", "/v1/changes"),
        ("GET", "/v1/replicate"),
        ("DELETE", "/v1/purge"),
        ("POST", "/healthz"),
    ],
)
def test_wrong_method_is_json_405(node: str, method: str, path: str) -> None:
    r = call(method, node + path, b"{}")
    err(r, 405, "ErrSyntaxInvalidArgs")
    assert r.headers.get("allow")
