"""The handler's memory does not grow with the list it serves: a whole list of 200,000 tasks
(about 20 MB of JSON) streams through it page by page, and its peak resident set grows by a few
MiB, not by the list (one copy of the body alone would be 20 MB)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from tests.harness import LocalCluster, request
from tests.tasks_fill import fill, task_key

TASKS = 200_000
GROWTH_MIB = 12  # page cache (1 MiB here) + a node page or two in flight + allocator slack

pytestmark = pytest.mark.timeout(300)


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_a_whole_list_streams_through_the_handler_in_flat_memory(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=2, sections={"handler": {"page_cache_mib": 1}})
    c.start_nodes()
    for url in c.node_urls:
        fill(url, TASKS)
    c.start("balancer")
    handler = c.start("handler")
    auth = {"Authorization": c.user_auth}
    warm = request("GET", c.url("handler") + "/v1/tasks?limit=10", headers=auth)
    assert warm.status == 200, warm
    peak_before = _kib(handler.pid, "VmHWM")

    r = request("GET", c.url("handler") + "/v1/tasks", headers=auth, timeout=120)

    assert r.status == 200, r
    assert r.headers.get("transfer-encoding", r.headers.get("Transfer-Encoding")) == "chunked"
    assert len(r.body) > 15_000_000  # the list is far bigger than the growth allowed below
    page = msgspec.json.decode(r.body)
    ids = [t[0] for t in page["tasks"]]
    assert ids == [task_key(i).split(".", 1)[1] for i in range(TASKS)]
    assert page["next"] is None
    grown_mib = (_kib(handler.pid, "VmHWM") - peak_before) / 1024
    print(f"handler peak RSS grew {grown_mib:.1f} MiB over a {len(r.body) / 1e6:.1f} MB list")
    assert grown_mib < GROWTH_MIB
