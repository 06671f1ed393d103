"""Pages capped by bytes: a node's scan and feed stop a page at `max_page_bytes` (one row more at
most), paging still reaches every row, and serving big pages does not keep the memory."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.harness import LocalCluster, request

EPOCH = "0123456789abcdef"
VALUE = b'"' + b"v" * 60_000 + b'"'  # a 60 KB value
ROW_MAX = 64 * 1024 + 128  # a row's JSON at most (max_value_bytes + its fields)
PAGE_BYTES = 4 * 1024 * 1024  # the default max_page_bytes


def _load(url: str, n: int, batch: int = 100) -> None:
    """``n`` rows of 60 KB, replicated in from a made-up node (quicker than n PUTs)."""
    stamp = time.time_ns() // 1_000_000 << 16
    for start in range(0, n, batch):
        rows = [
            b'{"key":"big:%05d","value":%s,"deleted":false,"version":%d,"hlc":%d,"origin":"store9"}'
            % (i, VALUE, i + 1, stamp + i)
            for i in range(start, min(n, start + batch))
        ]
        body = b'{"source":"store9","epoch":"%s","source_version":%d,"rows":[%s]}' % (
            EPOCH.encode(),
            min(n, start + batch),
            b",".join(rows),
        )
        r = request("POST", url + "/v1/replicate", body)
        assert r.status == 200, r


def _mem_kib(pid: int, field: str) -> int:
    """VmRSS (resident now) or VmHWM (the peak resident so far) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field}")


def test_scan_and_feed_pages_stop_at_the_byte_cap_and_reach_every_row(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=1)
    c.start("store1")
    url = c.url("store1")
    n = 300  # 18 MB: more than four pages
    _load(url, n)
    keys: list[str] = []
    after = ""
    pages = 0
    while True:
        r = request("GET", f"{url}/v1/kv?limit=10000&after={after}")
        assert r.status == 200 and len(r.body) <= PAGE_BYTES + ROW_MAX, len(r.body)
        page = r.json()
        pages += 1
        keys += [row["key"] for row in page["rows"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert keys == [f"big:{i:05d}" for i in range(n)] and pages >= 5
    versions: list[int] = []
    since = 0
    while True:
        r = request("GET", f"{url}/v1/changes?limit=10000&since={since}")
        assert r.status == 200 and len(r.body) <= PAGE_BYTES + ROW_MAX, len(r.body)
        page = r.json()
        versions += [row["version"] for row in page["rows"]]
        # A page cut at the byte cap says so; a page that ends the feed carries no `more`.
        assert page.get("more", False) == (len(versions) < n), (len(versions), page.get("more"))
        # What dtm.core.syncplan.page_reach does with a page that is not full (fewer rows than
        # asked): it takes the page as complete up to last_version, which must not skip a row.
        since = max(since, page["last_version"])
        if not page["rows"]:
            break
    assert versions == list(range(1, n + 1))


def test_serving_a_big_scan_does_not_keep_hundreds_of_megabytes(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=1)
    proc = c.start("store1")
    url = c.url("store1")
    n = 2000  # 120 MB of values: on one uncapped page, the node held it twice over
    _load(url, n)
    before, peak_before = _mem_kib(proc.pid, "VmRSS"), _mem_kib(proc.pid, "VmHWM")
    for _ in range(3):
        after, seen = "", 0
        while True:
            page = request("GET", f"{url}/v1/kv?limit=10000&after={after}").json()
            seen += len(page["rows"])
            if page["next"] is None:
                break
            after = page["next"]
        assert seen == n
    grown_mib = (_mem_kib(proc.pid, "VmRSS") - before) / 1024
    peak_mib = (_mem_kib(proc.pid, "VmHWM") - peak_before) / 1024
    print(
        f"node RSS {before / 1024:.0f} MiB before 3 full scans; after: grown {grown_mib:.0f} MiB, "
        f"peak grown {peak_mib:.0f} MiB"
    )
    assert grown_mib < 100 and peak_mib < 100
