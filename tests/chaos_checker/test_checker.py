"""The chaos checker on synthetic histories: a correct store's histories pass, and each kind of
violation (a lost acknowledged write, a resurrection, a stale own-read, a value never written,
an older value winning, a read going backwards, nodes that differ) is caught."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from chaos.checker import check
from chaos.history import FAIL, INFO, OK, Op
from hypothesis import assume, given, settings
from hypothesis import strategies as st


def simulate(seed: int, steps: int, clients: int) -> tuple[list[Op], dict[str, Any]]:
    """A history of a linearizable store: every applied write takes effect at once."""
    rng = random.Random(seed)
    store: dict[str, dict[str, str]] = {}  # "user.id" -> value
    known: dict[int, list[str]] = {c: [] for c in range(clients)}
    seq = dict.fromkeys(range(clients), 0)
    ops: list[Op] = []
    t = 0.0
    words = 0
    for _ in range(steps):
        c = rng.randrange(clients)
        user = f"u{c}"
        seq[c] += 1
        t += 100.0  # beyond the grace of unanswered writes
        outcome = rng.choices((OK, INFO, FAIL), (80, 15, 5))[0]
        applied = outcome == OK or (outcome == INFO and rng.random() < 0.5)
        r = rng.random()
        base = {"client": c, "seq": seq[c], "inv": t, "end": t + 1.0, "user": user}
        if not known[c] or r < 0.3:
            words += 1
            value = {"text": f"w{words}", "status": "open"}
            tid = f"t{words}"
            if applied:
                store[f"{user}.{tid}"] = dict(value)
            result = dict(value) if outcome == OK else None
            ok_id = tid if outcome == OK else None
            ops.append(Op(f="create", type=outcome, id=ok_id, value=value, result=result, **base))
            if outcome == OK:
                known[c].append(tid)
            continue
        tid = rng.choice(known[c])
        key = f"{user}.{tid}"
        if r < 0.55:
            words += 1
            fields = rng.choice(
                (
                    {"text": f"w{words}"},
                    {"status": "complete"},
                    {"text": f"w{words}", "status": "open"},
                )
            )
            if key not in store:
                ops.append(
                    Op(f="update", type=FAIL, id=tid, value=fields, error="ErrNoDataFound", **base)
                )
                continue
            if applied:
                store[key] = {**store[key], **fields}
            result = dict(store[key]) if outcome == OK else None
            ops.append(Op(f="update", type=outcome, id=tid, value=fields, result=result, **base))
        elif r < 0.7:
            if key not in store:
                ops.append(Op(f="delete", type=INFO, id=tid, error="ErrNoDataFound", **base))
                continue
            if applied:
                del store[key]
            ops.append(Op(f="delete", type=outcome, id=tid, **base))
        elif r < 0.85:
            if outcome == FAIL:
                ops.append(Op(f="get", type=FAIL, id=tid, error="ErrNotCaughtUp", **base))
                continue
            v = store.get(key)
            err = "" if v is not None else "ErrNoDataFound"
            ops.append(
                Op(f="get", type=OK, id=tid, result=dict(v) if v else None, error=err, **base)
            )
        else:
            if outcome == FAIL:
                ops.append(Op(f="list", type=FAIL, **base))
                continue
            mine = {
                k.split(".", 1)[1]: dict(v) for k, v in store.items() if k.startswith(user + ".")
            }
            ops.append(Op(f="list", type=OK, result=mine, **base))
            known[c] = sorted(set(known[c]) | set(mine))
    return ops, {k: dict(v, created="x", updated="y") for k, v in store.items()}


histories = st.tuples(st.integers(0, 10**9), st.integers(5, 120), st.integers(1, 3))


def kinds(ops: list[Op], finals: list[dict[str, Any]], identical: bool = True) -> set[str]:
    return {a.kind for a in check(ops, finals, identical).anomalies}


@settings(max_examples=150, deadline=None)
@given(histories)
def test_a_correct_store_passes(h: tuple[int, int, int]) -> None:
    ops, final = simulate(*h)
    verdict = check(ops, [final, dict(final)])
    assert verdict.valid, verdict.anomalies[:5]


def _last_writes(ops: list[Op]) -> dict[tuple[str, str], Op]:
    last: dict[tuple[str, str], Op] = {}
    for op in ops:
        if op.f in ("create", "update", "delete") and op.id and op.type != FAIL:
            last[(op.user, op.id)] = op
    return last


@settings(max_examples=100, deadline=None)
@given(histories)
def test_a_lost_acknowledged_write_is_caught(h: tuple[int, int, int]) -> None:
    ops, final = simulate(*h)
    acked = [k for k, op in _last_writes(ops).items() if op.type == OK and op.f != "delete"]
    assume(acked)
    user, tid = acked[0]
    del final[f"{user}.{tid}"]
    assert "lost" in kinds(ops, [final])


@settings(max_examples=100, deadline=None)
@given(histories)
def test_a_resurrection_is_caught(h: tuple[int, int, int]) -> None:
    ops, final = simulate(*h)
    made = {(o.user, o.id): o for o in ops if o.f == "create" and o.type == OK}
    gone = [
        k for k, op in _last_writes(ops).items() if op.type == OK and op.f == "delete" and k in made
    ]
    assume(gone)
    user, tid = gone[0]
    create = made[(user, tid)]
    final[f"{user}.{tid}"] = dict(create.result)
    assert "resurrected" in kinds(ops, [final])


@settings(max_examples=100, deadline=None)
@given(histories)
def test_a_stale_own_read_is_caught(h: tuple[int, int, int]) -> None:
    ops, final = simulate(*h)
    # a get after an acknowledged update with a new text shows the value before that update
    made = {(o.user, o.id): o for o in ops if o.f == "create" and o.type == OK}
    for i, op in enumerate(ops):
        if op.f == "update" and op.type == OK and "text" in (op.value or {}):
            if (op.user, op.id) not in made:
                continue
            later = [
                j
                for j in range(i + 1, len(ops))
                if ops[j].f == "get"
                and ops[j].id == op.id
                and ops[j].user == op.user
                and ops[j].type == OK
                and ops[j].result is not None
            ]
            if later:
                j = later[0]
                old = {"text": "w-before", "status": "open"}
                ops[j] = dataclasses.replace(ops[j], result=old)
                assert kinds(ops, [final]) & {"stale", "phantom"}
                create = made[(op.user, op.id)]
                ops[j] = dataclasses.replace(ops[j], result=dict(create.result))
                assert "stale" in kinds(ops, [final])
                return
    assume(False)


def test_a_deleted_task_listed_again_by_its_session_is_stale() -> None:
    base = {"client": 0, "user": "u0"}
    v = {"text": "a", "status": "open"}
    ops = [
        Op(seq=1, f="create", inv=0, end=1, type=OK, id="t1", value=v, result=v, **base),
        Op(seq=2, f="delete", inv=2, end=3, type=OK, id="t1", **base),
        Op(seq=3, f="list", inv=4, end=5, type=OK, result={"t1": v}, **base),
        Op(seq=4, f="delete", inv=6, end=7, type=INFO, id="t1", error="ErrNoDataFound", **base),
    ]
    assert [a.kind for a in check(ops, [{}]).anomalies] == ["stale"]
    # and the delete of a task just created answering 404 is a stale read too
    ops2 = [ops[0], dataclasses.replace(ops[3], seq=2)]
    assert [a.kind for a in check(ops2, [{"u0.t1": v}]).anomalies] == ["stale"]


def test_an_older_value_winning_over_a_later_acknowledged_write_is_a_lost_update() -> None:
    base = {"client": 0, "user": "u0"}
    v1, v2 = {"text": "a", "status": "open"}, {"text": "b", "status": "open"}
    ops = [
        Op(seq=1, f="create", inv=0, end=1, type=OK, id="t1", value=v1, result=v1, **base),
        Op(
            seq=2,
            f="update",
            inv=2,
            end=3,
            type=OK,
            id="t1",
            value={"text": "b"},
            result=v2,
            **base,
        ),
    ]
    assert check(ops, [{"u0.t1": v2}]).valid
    assert kinds(ops, [{"u0.t1": v1}]) == {"lost-update"}
    assert kinds(ops, [{"u0.t1": {"text": "zz", "status": "open"}}]) == {"phantom"}
    assert kinds(ops, [{"u0.t1": v2, "u0.t9": v1}]) == {"phantom"}
    # an unanswered update may or may not have applied, for a while after its answer
    ops.append(Op(seq=3, f="update", inv=4, end=5, type=INFO, id="t1", value={"text": "c"}, **base))
    assert check(ops, [{"u0.t1": v2}]).valid
    assert check(ops, [{"u0.t1": {"text": "c", "status": "open"}}]).valid
    # but not once a later acknowledged write, invoked after that grace, ended
    v4 = {"text": "d", "status": "open"}
    ops.append(
        Op(
            seq=4,
            f="update",
            inv=60,
            end=61,
            type=OK,
            id="t1",
            value={"text": "d"},
            result=v4,
            **base,
        )
    )
    assert kinds(ops, [{"u0.t1": {"text": "c", "status": "open"}}]) == {"lost-update"}


def test_a_read_going_back_after_an_unanswered_write_showed_is_nonmonotonic() -> None:
    base = {"client": 0, "user": "u0"}
    v1, v2 = {"text": "a", "status": "open"}, {"text": "b", "status": "open"}
    ops = [
        Op(seq=1, f="create", inv=0, end=1, type=OK, id="t1", value=v1, result=v1, **base),
        Op(seq=2, f="update", inv=2, end=3, type=INFO, id="t1", value={"text": "b"}, **base),
        Op(seq=3, f="get", inv=4, end=5, type=OK, id="t1", result=v2, **base),
        Op(seq=4, f="get", inv=6, end=7, type=OK, id="t1", result=v1, **base),
    ]
    assert kinds(ops, [{"u0.t1": v2}]) == {"nonmonotonic"}


def test_an_unanswered_create_is_linked_by_its_text_and_duplicates_are_caught() -> None:
    base = {"client": 0, "user": "u0"}
    v = {"text": "a", "status": "open"}
    ops = [Op(seq=1, f="create", inv=0, end=1, type=INFO, value=v, **base)]
    assert check(ops, [{}]).valid
    assert check(ops, [{"u0.t7": v}]).valid
    assert kinds(ops, [{"u0.t7": v, "u0.t8": v}]) == {"duplicate", "phantom"}


def test_nodes_that_differ_are_reported() -> None:
    assert kinds([], [{}, {}], identical=False) == {"diverged"}


def test_an_update_built_on_a_stale_lookup_is_a_stale_read() -> None:
    base = {"client": 0, "user": "u0"}
    v1 = {"text": "a", "status": "open"}
    v2 = {"text": "b", "status": "open"}
    ops = [
        Op(seq=1, f="create", inv=0, end=1, type=OK, id="t1", value=v1, result=v1, **base),
        Op(
            seq=2,
            f="update",
            inv=2,
            end=3,
            type=OK,
            id="t1",
            value={"text": "b"},
            result=v2,
            **base,
        ),
    ]
    done = {"status": "complete"}
    good = Op(seq=3, f="update", inv=4, end=5, type=OK, id="t1", value=done,
              result={"text": "b", "status": "complete"}, **base)  # fmt: skip
    assert check([*ops, good], [{"u0.t1": good.result}]).valid
    # its lookup read the value before the session's own acknowledged update: text "a" is back
    bad = dataclasses.replace(good, result={"text": "a", "status": "complete"})
    assert kinds([*ops, bad], [{"u0.t1": bad.result}]) == {"stale"}
