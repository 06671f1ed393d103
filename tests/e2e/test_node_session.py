"""Session guarantees on a real data node: X-Dtm-Session / X-Dtm-Wait and 409 ErrNotCaughtUp."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests.harness import LocalCluster, request


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    c = LocalCluster(Path(tmp_path_factory.mktemp("node_session")), nodes=1)
    try:
        c.start("store1")
        yield c.url("store1")
    finally:
        c.stop_all()


def token(versions: dict[str, int], epochs: dict[str, str]) -> dict[str, str]:
    return {"X-Dtm-Session": json.dumps({"versions": versions, "epochs": epochs})}


def status(url: str) -> dict[str, Any]:
    body: dict[str, Any] = request("GET", f"{url}/v1/status").json()
    return body


async def waiters(s: aiohttp.ClientSession, url: str) -> int:
    async with s.get(f"{url}/metrics") as r:
        for line in (await r.text()).splitlines():
            if line.startswith("dtm_node_longpoll_waiters "):
                return int(float(line.split()[1]))
    raise AssertionError("no dtm_node_longpoll_waiters metric")


async def until(pred: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)


def replicate(url: str, source: str, epoch: str, version: int, key: str) -> dict[str, Any]:
    row = {"key": key, "value": 1, "deleted": False, "version": version}
    row |= {"hlc": 65536, "origin": source}
    body = {"source": source, "epoch": epoch, "source_version": version, "rows": [row]}
    r = request("POST", f"{url}/v1/replicate", body)
    assert r.status == 200, r
    out: dict[str, Any] = r.json()
    return out


@pytest.mark.parametrize("path", ["/v1/kv/s:x", "/v1/kv", "/v1/changes?since=0"])
def test_unreached_version_is_not_caught_up(node: str, path: str) -> None:
    s = status(node)
    ahead = s["last_version"] + 1000
    r = request("GET", node + path, headers=token({"store1": ahead}, {"store1": s["epoch"]}))
    assert r.status == 409, r
    assert r.json()["error"] == "ErrNotCaughtUp"
    assert f"store1@{ahead}" in r.json()["message"]
    assert "x-dtm-session" in r.headers


def test_other_epoch_and_unknown_peer_are_not_caught_up(node: str) -> None:
    r = request(
        "GET", f"{node}/v1/kv/s:x", headers=token({"store1": 1}, {"store1": "0123456789abcdef"})
    )
    assert r.status == 409 and r.json()["error"] == "ErrNotCaughtUp"
    # version 0 of any epoch requires nothing: served (here: not found)
    r = request(
        "GET", f"{node}/v1/kv/s:x", headers=token({"store1": 0}, {"store1": "0123456789abcdef"})
    )
    assert r.status == 404 and r.json()["error"] == "ErrNoDataFound"
    r = request(
        "GET", f"{node}/v1/kv", headers=token({"store7": 1}, {"store7": "e7e7e7e7e7e7e7e7"})
    )
    assert r.status == 409 and "store7@1" in r.json()["message"]


def test_met_token_serves_and_answers_carry_the_contribution(node: str) -> None:
    put = request("PUT", f"{node}/v1/kv/s:mine", {"value": "v"})
    mine = json.loads(put.headers["x-dtm-session"])
    r = request("GET", f"{node}/v1/kv/s:mine", headers={"X-Dtm-Session": json.dumps(mine)})
    assert r.status == 200 and r.json()["value"] == "v"
    got = json.loads(r.headers["x-dtm-session"])
    assert got["versions"]["store1"] >= mine["versions"]["store1"]
    assert got["epochs"] == mine["epochs"] and got["hlc"] == put.json()["hlc"]
    empty = request("GET", f"{node}/v1/kv/s:mine", headers={"X-Dtm-Session": "{}"})
    assert empty.status == 200


def test_wait_expires_into_409(node: str) -> None:
    s = status(node)
    t0 = time.monotonic()
    headers = {**token({"store1": s["last_version"] + 50}, {"store1": s["epoch"]})}
    r = request("GET", f"{node}/v1/kv/s:x", headers={**headers, "X-Dtm-Wait": "200"})
    elapsed = time.monotonic() - t0
    assert r.status == 409 and r.json()["error"] == "ErrNotCaughtUp"
    assert 0.19 <= elapsed < 3, elapsed


async def test_wait_answers_as_soon_as_replicate_satisfies_it(node: str) -> None:
    hdrs = {**token({"store2": 5}, {"store2": "e2e2e2e2e2e2e2e2"}), "X-Dtm-Wait": "8000"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as s:

        async def read() -> tuple[float, int, Any]:
            async with s.get(f"{node}/v1/kv/s:repl", headers=hdrs) as r:
                body = await r.json()
                return time.monotonic(), r.status, body

        async def parked() -> bool:
            return await waiters(s, node) == 1

        task = asyncio.create_task(read())
        await until(parked, 5, "the session read to park")
        # A batch that reaches only version 3 of store2 is not enough.
        await asyncio.to_thread(replicate, node, "store2", "e2e2e2e2e2e2e2e2", 3, "s:repl")
        assert await waiters(s, node) == 1 and not task.done()
        await asyncio.to_thread(replicate, node, "store2", "e2e2e2e2e2e2e2e2", 5, "s:other")
        acked = time.monotonic()
        answered, code, body = await asyncio.wait_for(task, 5)
    assert code == 200 and body["key"] == "s:repl" and body["origin"] == "store2"
    assert answered - acked < 0.5


async def test_wait_answers_when_a_local_write_lands(node: str) -> None:
    s0 = status(node)
    need = s0["last_version"] + 1
    hdrs = {**token({"store1": need}, {"store1": s0["epoch"]}), "X-Dtm-Wait": "8000"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as s:

        async def read() -> tuple[int, Any]:
            async with s.get(f"{node}/v1/changes?since={need - 1}", headers=hdrs) as r:
                return r.status, await r.json()

        async def parked() -> bool:
            return await waiters(s, node) == 1

        task = asyncio.create_task(read())
        await until(parked, 5, "the session read to park")
        async with s.put(f"{node}/v1/kv/s:local", json={"value": 1}) as r:
            assert r.status == 200
        code, page = await asyncio.wait_for(task, 5)
    assert code == 200 and [row["key"] for row in page["rows"]] == ["s:local"]


def test_a_delete_waits_for_the_session_like_a_read(node: str) -> None:
    """A replica that has not caught up must not answer a delete "not found": the key may be
    live where the session saw it. It answers ErrNotCaughtUp, and deletes nothing."""
    assert request("PUT", f"{node}/v1/kv/s:del", {"value": 1}).status == 200
    s = status(node)
    ahead = token({"store1": s["last_version"] + 50}, {"store1": s["epoch"]})
    r = request("DELETE", f"{node}/v1/kv/s:del", headers=ahead)
    assert r.status == 409 and r.json()["error"] == "ErrNotCaughtUp", r
    assert request("GET", f"{node}/v1/kv/s:del").status == 200
    met = token({"store1": s["last_version"]}, {"store1": s["epoch"]})
    assert request("DELETE", f"{node}/v1/kv/s:del", headers=met).status == 200


def test_a_batch_planned_for_another_epoch_is_refused_and_serves_no_session(node: str) -> None:
    """A batch the sync planned for this node's previous epoch (before a wipe) leaves out the rows
    that epoch held: taken, it would record store7's feed through version 50 with one row of it,
    and a session that wrote at store7 would be served without its writes."""
    s = status(node)
    old = "0123456789abcdef"
    assert s["epoch"] != old
    row = {"key": "s:w50", "value": 1, "deleted": False, "version": 50}
    row |= {"hlc": 65536, "origin": "store7"}
    body = {"source": "store7", "epoch": "7777777777777777", "source_version": 50}
    r = request("POST", f"{node}/v1/replicate", body | {"rows": [row], "target_epoch": old})
    assert r.status == 409 and r.json()["error"] == "ErrNotCaughtUp", r
    assert "planned for epoch" in r.json()["message"]
    assert "store7" not in status(node).get("applied", {})
    session = token({"store7": 20}, {"store7": "7777777777777777"})
    assert request("GET", f"{node}/v1/kv/s:w20", headers=session).status == 409
    # planned for the epoch it is at: taken
    r = request("POST", f"{node}/v1/replicate", body | {"rows": [row], "target_epoch": s["epoch"]})
    assert r.status == 200 and r.json()["applied"] == 1, r
