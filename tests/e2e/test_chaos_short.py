"""The short mode of the fault harness (`make chaos MODE=short`), one seed, inside `make test`.

It builds the namespace hosts, runs 3 clients for 75 s through the fixed mix of nemeses (a node
killed, a node paused, the sync isolated, the balancer cut from a node, a node's clock 30 s
ahead, the balancer killed during a one-way partition, sync crashes during packet loss, a node
wiped), heals, and checks the history. Needs root, iproute2 and nftables (skipped otherwise).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chaos.net import unavailable

ROOT = Path(__file__).resolve().parents[2]
SEED = 7
pytestmark = [pytest.mark.netns, pytest.mark.timeout(300)]

_why = unavailable()
if _why is not None:
    pytestmark.append(pytest.mark.skip(reason=f"the fault harness cannot run here: {_why}"))


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("chaos")
    argv = [sys.executable, "-m", "chaos", "--short", "--seed", str(SEED), "--clients", "3"]
    argv += ["--out", str(out), "--doc", str(out / "reliability.md")]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    result: dict[str, Any] = json.loads((out / f"seed{SEED}" / "result.json").read_text())
    result["stdout"] = proc.stdout
    result["doc"] = (out / "reliability.md").read_text()
    return result


def test_short_run_strikes_every_fault_and_keeps_every_acknowledged_write(
    short_run: dict[str, Any],
) -> None:
    r = short_run
    assert r["ops"] > 300, r["stdout"][-2000:]
    kinds = {w["kind"] for w in r["windows"]}
    assert len(r["windows"]) == 10, kinds
    assert {"kill node", "pause node", "isolate sync", "wipe", "sync-crash"} <= kinds
    assert r["identical"], "the nodes differ after healing"
    bad = {k: n for k, n in r["counts"].items() if k not in ("stale", "nonmonotonic")}
    assert not bad, [a for a in r["anomalies"] if a["kind"] in bad][:10]
    assert "| nemesis | operations | faults |" in r["doc"]


@pytest.mark.xfail(
    reason="read-your-writes breaks after a wipe: a token naming the wiped node's new epoch is "
    "served by a replica that applied only its old epoch (stale own-reads for seconds)",
    strict=False,
)
def test_short_run_shows_no_stale_own_read(short_run: dict[str, Any]) -> None:
    stale = [a for a in short_run["anomalies"] if a["kind"] in ("stale", "nonmonotonic")]
    assert not stale, stale[:10]
