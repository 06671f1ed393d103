"""Helpers for the sync end-to-end tests: direct node writes, row snapshots, convergence waits."""

from __future__ import annotations

import json
from typing import Any

from tests.harness import LocalCluster, request, wait_until


def put(url: str, key: str, value: Any, seen_hlc: int = 0) -> dict[str, Any]:
    headers = {"X-Dtm-Hlc": str(seen_hlc)} if seen_hlc else None
    r = request("PUT", f"{url}/v1/kv/{key}", {"value": value}, headers=headers)
    assert r.status == 200, r
    row: dict[str, Any] = r.json()
    return row


def delete(url: str, key: str, seen_hlc: int = 0) -> dict[str, Any] | None:
    headers = {"X-Dtm-Hlc": str(seen_hlc)} if seen_hlc else None
    r = request("DELETE", f"{url}/v1/kv/{key}", headers=headers)
    if r.status == 404:
        return None
    assert r.status == 200, r
    row: dict[str, Any] = r.json()
    return row


def rows(url: str) -> dict[str, tuple[bool, int, str, str]]:
    """Every row of a node (tombstones too), from its feed: key -> (deleted, hlc, origin, value)."""
    out: dict[str, tuple[bool, int, str, str]] = {}
    since = 0
    while True:
        r = request("GET", f"{url}/v1/changes?since={since}&limit=10000")
        assert r.status == 200, r
        page = r.json()
        for row in page["rows"]:
            out[row["key"]] = (row["deleted"], row["hlc"], row["origin"], json.dumps(row["value"]))
        if len(page["rows"]) < 10000:
            return out
        since = page["rows"][-1]["version"]


def live(url: str) -> dict[str, tuple[int, str, str]]:
    return {k: v[1:] for k, v in rows(url).items() if not v[0]}


def node_status(url: str) -> dict[str, Any]:
    r = request("GET", f"{url}/v1/status")
    assert r.status == 200, r
    body: dict[str, Any] = r.json()
    return body


def sync_status(c: LocalCluster, url: str | None = None) -> dict[str, Any]:
    r = request("GET", (url or c.url("sync")) + "/v1/status")
    assert r.status == 200, r
    body: dict[str, Any] = r.json()
    return body


def converged(c: LocalCluster, timeout: float = 20.0) -> dict[str, tuple[int, str, str]]:
    """Wait until every node holds the same live rows; return them."""

    def same() -> list[dict[str, tuple[int, str, str]]]:
        states = [live(u) for u in c.node_urls]
        return [states[0]] if all(s == states[0] for s in states) else []

    return wait_until(same, timeout, 0.1, "all nodes to hold the same rows")[0]


def caught_up(c: LocalCluster, url: str | None = None, timeout: float = 20.0) -> None:
    """Wait until the sync process reports zero lag on every pair."""

    def ok() -> bool:
        st = sync_status(c, url)
        return bool(st["pairs"]) and all(
            p["lag_versions"] == 0 and p["source_last_version"] > 0 for p in st["pairs"]
        )

    wait_until(ok, timeout, 0.05, "the sync process to report zero lag")


def oracle(acked: list[dict[str, Any]]) -> dict[str, tuple[int, str, str]]:
    """The last-writer-wins result of acknowledged writes: live keys -> (hlc, origin, value)."""
    best: dict[str, dict[str, Any]] = {}
    for row in acked:
        cur = best.get(row["key"])
        if cur is None or (row["hlc"], row["origin"]) > (cur["hlc"], cur["origin"]):
            best[row["key"]] = row
    return {
        k: (r["hlc"], r["origin"], json.dumps(r["value"]))
        for k, r in best.items()
        if not r["deleted"]
    }


class Writers:
    """Client threads writing random puts and deletes over a few keys directly to the nodes."""

    def __init__(self, urls: list[str], keys: int = 30, seed: int = 7) -> None:
        import random
        import threading

        self.urls = urls
        self.keys = [f"t{i}" for i in range(keys)]
        self.acked: list[dict[str, Any]] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._go = threading.Event()
        self._busy = [False] * len(urls)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i, u, seed + i), daemon=True)
            for i, u in enumerate(urls)
        ]
        for t in self._threads:
            t.start()

    def _run(self, i: int, url: str, seed: int) -> None:
        import random

        rng = random.Random(seed)
        n = 0
        while not self._stop.is_set():
            self._busy[i] = False
            if not self._go.wait(0.05):
                continue
            self._busy[i] = True
            if not self._go.is_set():
                continue
            key = rng.choice(self.keys)
            n += 1
            try:
                if rng.random() < 0.3:
                    row = delete(url, key)
                else:
                    row = put(url, key, {"n": n, "by": url[-5:]})
            except (AssertionError, OSError):
                continue  # the node is down: not acknowledged
            if row is not None:
                with self._lock:
                    self.acked.append(row)

    def run_for(self, seconds: float) -> None:
        import time

        self._go.set()
        time.sleep(seconds)  # how long to keep writing: load, not a wait for a condition
        self._go.clear()
        wait_until(lambda: not any(self._busy), 10, 0.01, "writers to finish their last write")

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)


def fenced(url: str) -> bool:
    """Whether the node at ``url`` says its clock is fenced (it refuses client writes)."""
    body: dict[str, Any] = request("GET", f"{url}/healthz", auth=False).json()
    return bool(body.get("fenced", False))
