"""The benchmark suite runs end to end with tiny counts, so it cannot rot.

It runs `python -m bench --tiny --no-install` as a process against real components on free
loopback ports, writing its page, charts and results.json into a temporary folder (never into
docs/). Tools that are not installed (wrk, redis-server, haproxy, hyperfine) are not installed
here: the suite then uses its stand-ins or marks those references "not measured".
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GROUPS = {"node", "balancer", "handler", "cli", "lag", "catchup", "memory"}


@pytest.mark.timeout(240)
def test_bench_suite_runs_with_tiny_counts(tmp_path: Path) -> None:
    page = ROOT / "docs" / "benchmarks.md"
    before = page.stat().st_mtime_ns if page.exists() else None
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--no-install", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    results = json.loads((out / "results.json").read_text())
    assert results["mode"] == "tiny"
    by_key = {g["key"]: g for g in results["groups"]}
    assert set(by_key) == GROUPS
    for key, g in by_key.items():
        assert not g["not_measured"], (key, g["not_measured"])
        measured = [r for r in g["rows"] if not r["not_measured"]]
        assert measured, key
        for r in measured:
            assert r["median"] is not None and r["median"] >= 0, (key, r["name"])
            if r["unit"].endswith("/s"):
                assert r["median"] > 0, (key, r["name"])
    assert by_key["lag"]["series"], "the lag samples for the chart are kept"
    assert len(results["goals"]) >= 10

    text = (out / "benchmarks.md").read_text()
    assert "tiny counts" in text and "## Goals" in text and "## 1. Data node" in text
    if importlib.util.find_spec("matplotlib") is not None:  # charts need the bench extra
        for png in ("bench-throughput.png", "bench-lag.png", "bench-catchup.png"):
            assert (out / "img" / png).read_bytes()[:4] == b"\x89PNG"
    after = page.stat().st_mtime_ns if page.exists() else None
    assert after == before, "the smoke test must not write docs/benchmarks.md"
