"""The benchmark suite runs end to end with tiny counts, so it cannot rot.

It runs `python -m bench --tiny` as a process — the suite's own code path, in its private network
namespace, against real dtm components and the Go original from ../shared/peer — writing its page,
charts and results.json into a temporary folder (never into docs/), with the references group
(HAProxy and Redis beside dtm's balancer and data node) in the same run. Without wrk the suite
cannot run, and without a private network namespace (root) or the original's binaries the
original is "not measured": the test then checks dtm's side and skips, saying why.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _rows(results: dict, group: str) -> dict[str, dict]:
    found = [g for g in results["groups"] if g["key"] == group]
    assert found, f"no {group} group"
    return {r["name"]: r for r in found[0]["rows"]}


@pytest.mark.timeout(400)
def test_bench_suite_runs_with_tiny_counts(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (`make bench-deps`)")
    page = ROOT / "docs" / "benchmarks.md"
    before = page.stat().st_mtime_ns if page.exists() else None
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=380,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["mode"] == "tiny"

    paths, repl = _rows(results, "paths"), _rows(results, "replication")
    dtm = [r for name, r in paths.items() if name.startswith("dtm: ")]
    # The six stages, the list with each list asking a node, and the list with no page kept.
    assert len(dtm) == 8
    for r in dtm:
        assert r["median"] > 0 and not r["note"], r["name"]  # every list carried all its tasks
        cpu = r["runs"][0]["cpu_us"]
        assert set(cpu) == {"store1", "store2", "balancer", "handler", "sync"}, cpu
        assert r["cpu_sum_us"] > 0
    lost = repl["dtm: acknowledged creates lost"]["runs"][0]
    assert lost["requests"] > 0 and lost["value"] == 0
    assert repl["dtm: replication lag"]["median"] is not None
    assert repl["dtm: catch-up of a wiped node"]["median"] > 0
    goals = {g["key"]: g for g in results["goals"]}
    assert goals["lost"]["met"] is True and goals["cli"]["met"] is not None

    refs = _rows(results, "references")
    assert len(refs) == 8  # four pairs: HAProxy twice, Redis, the bare llhttp server
    for r in refs.values():
        if r["not_measured"]:  # haproxy or redis missing: said on the row
            assert "make bench-deps" in r["not_measured"], r
            continue
        assert r["median"] > 0 and r["cpu_sum_us"] > 0 and r["runs"][0]["errors"] == 0, r

    text = (out / "benchmarks.md").read_text()
    assert "tiny counts" in text and "## Goals" in text and "{{" not in text
    assert "HAProxy" in text and "Redis" in text
    after = page.stat().st_mtime_ns if page.exists() else None
    assert after == before, "the smoke test must not write docs/benchmarks.md"

    original = [r for name, r in paths.items() if name.startswith("original: ")]
    if original[0]["not_measured"]:
        pytest.skip(f"dtm's side ran; the original did not: {original[0]['not_measured']}")
    for r in original:
        assert r["median"] > 0 and not r["note"], r["name"]
        assert {"store1", "store2", "balancer", "sync"} <= set(r["runs"][0]["cpu_us"])
    assert goals["create32"]["met"] is not None and goals["cpu"]["met"] is not None
    their_lost = repl["original: acknowledged creates lost"]["runs"][0]
    assert their_lost["requests"] > 0 and their_lost["value"] > 0  # it loses what it acknowledged
