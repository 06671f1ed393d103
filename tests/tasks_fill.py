"""Many tasks on a node at once, for tests and benchmarks: rows replicated in from a made-up
peer, far quicker than one create per task.

Rule: task ``i`` of the test user has the same key, value and stamp on every node it is put on,
so filling two nodes the same way leaves nothing for the sync to copy.
"""

from __future__ import annotations

import msgspec
from tests.harness import TEST_USER, request

TASK_VALUE = b'{"text":"benchmark task","status":"open","created":"2026-01-01T00:00:00.000Z",'
TASK_VALUE += b'"updated":"2026-01-01T00:00:00.000Z"}'
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # the task-ID alphabet (dtm.core.tasks)
STAMP_BASE = 1_767_225_600_000 << 16  # 2026-01-01: never ahead of a node's clock


def task_key(i: int) -> str:
    """The key of the test user's task number ``i`` (a valid 12-character task ID)."""
    digits = [ALPHABET[(i >> (5 * k)) % 32] for k in range(12)]
    return f"{TEST_USER}.{''.join(reversed(digits))}"


def fill(url: str, count: int, batch: int = 5000) -> None:
    """Tasks 0..count-1 on the node at ``url``, by replicated batches of ``batch`` rows."""
    for first in range(0, count, batch):
        n = min(batch, count - first)
        rows = [
            {
                "key": task_key(i),
                "value": msgspec.Raw(TASK_VALUE),
                "deleted": False,
                "version": i + 1,
                "hlc": STAMP_BASE + i,
                "origin": "filler",
            }
            for i in range(first, first + n)
        ]
        body = {"source": "filler", "epoch": "f" * 16, "source_version": first + n, "rows": rows}
        r = request("POST", f"{url}/v1/replicate", msgspec.json.encode(body), timeout=120)
        if r.status != 200:
            raise RuntimeError(f"filling {url} failed: {r}")
