"""The nemesis plan is a function of its seed, and the report attributes what it counts."""

from __future__ import annotations

from chaos.checker import Anomaly, Verdict
from chaos.history import FAIL, OK, Op, Window
from chaos.nemesis import KINDS, SHORT_S, plan, short_plan
from chaos.report import NONE, RunSummary, labels_at, labels_of, markdown, rows
from hypothesis import given, settings
from hypothesis import strategies as st

NODES = ["store1", "store2", "store3"]


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32), st.floats(60, 600))
def test_a_seed_names_one_plan_of_faults_on_distinct_components(seed: int, seconds: float) -> None:
    faults = plan(seed, seconds, NODES, KINDS)
    assert faults == plan(seed, seconds, NODES, KINDS)
    assert faults, "a run of a minute or more strikes at least once"
    by_start: dict[float, list[str]] = {}
    for f in faults:
        assert f.at + f.hold <= seconds
        assert f.kind in KINDS and f.targets
        if f.kind in ("isolate", "split", "one-way", "loss", "latency"):
            assert not {"handler", "handler2"} & set(f.targets)
        by_start.setdefault(f.at, []).extend(f.targets)
    for targets in by_start.values():
        assert len(targets) == len(set(targets)), targets
    assert plan(seed + 1, seconds, NODES, KINDS) != faults or len(faults) < 3


def test_the_short_mix_fits_its_run_and_covers_every_family() -> None:
    faults = short_plan(NODES)
    assert max(f.at + f.hold for f in faults) <= SHORT_S - 5
    assert {f.kind for f in faults} >= {
        "kill", "pause", "isolate", "split", "one-way", "loss", "skew", "wipe-synced", "sync-crash",
        "sync-crash-at",
    }  # fmt: skip


def test_operations_and_anomalies_count_for_the_faults_in_force() -> None:
    w = [Window("kill node", "store1", 10, 20), Window("wipe", "store2", 30, 35)]
    assert labels_at(15, w) == ["kill node"]
    assert labels_at(25, w) == ["kill node"]  # within 10 s after it healed
    assert labels_at(40, w) == ["wipe"]  # the last to heal, not both
    late = [*w, Window("pause node", "store3", 38, 45)]
    assert labels_at(40, late) == ["pause node"]  # the fault in force takes it
    assert labels_at(50, w) == [NONE]
    base = {"client": 0, "user": "u0", "f": "get", "id": "t"}
    ops = [
        Op(seq=1, inv=12, end=13, type=OK, **base),
        Op(seq=2, inv=14, end=15, type=FAIL, **base),
        Op(seq=3, inv=50, end=51, type=OK, **base),
    ]
    # a write lost at the end counts for the faults from its acknowledgement on
    assert labels_of(Anomaly("lost", "u0", "t", 27, ""), w) == ["wipe"]
    assert labels_of(Anomaly("stale", "u0", "t", 27, ""), w) == ["kill node"]
    verdict = Verdict([Anomaly("stale", "u0", "t", 31, ""), Anomaly("lost", "u0", "t", 15, "")])
    r = rows(ops, w, verdict)
    assert (r["kill node"].ops, r["kill node"].ok, r["kill node"].lost) == (2, 1, 1)
    assert r["kill node"].availability == 0.5 and r["kill node"].worst == 0.5
    assert (r["wipe"].faults, r["wipe"].stale, r["wipe"].ops) == (1, 1, 0)
    assert r[NONE].ops == 1
    page = markdown(
        [RunSummary(5, 1, 3, "long", 3, {"stale": 1}, list(r.values()), True, 0.5, "x")], "cmd"
    )
    assert "| kill node | 2 | 1 | 1 | 0 | 0 | 50.0 % | 50.0 % | 50.0 % |" in page
