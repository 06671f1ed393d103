"""Merging several nodes' answers (dtm.core.readmerge) and the one session-token codec."""

from __future__ import annotations

import random

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtm.core import sessiontoken
from dtm.core.order import write_id
from dtm.core.readmerge import latest, live, merge_pages
from dtm.errors import ErrSyntaxInvalidArgs
from dtm.wire import NULL, Row, SessionToken

KEYS = [f"k{i:02d}" for i in range(12)]


def row(key: str, hlc: int, origin: str, deleted: bool) -> Row:
    return Row(key, NULL if deleted else msgspec.Raw(b'"v"'), deleted, 1, hlc, origin)


def write(key: str, hlc: int, origin: str) -> Row:
    """One write of ``key``: its identity (hlc, origin) decides what it is, as in the system."""
    return row(key, hlc, origin, (hlc * 7 + int(origin[-1])) % 3 == 0)


rows_st = st.builds(write, st.sampled_from(KEYS), st.integers(1, 6), st.sampled_from(["s1", "s2"]))
# each node: at most one row per key
node_st = st.lists(rows_st, max_size=12).map(lambda rs: {r.key: r for r in rs})


def oracle(nodes: list[dict[str, Row]]) -> list[Row]:
    keys = sorted({k for n in nodes for k in n})
    best = [latest(n.get(k) for n in nodes) for k in keys]
    return [r for r in best if r is not None and not r.deleted]


@given(st.lists(node_st, min_size=1, max_size=3), st.integers(1, 5))
def test_paging_through_a_merge_gives_every_keys_latest_live_write(
    nodes: list[dict[str, Row]], limit: int
) -> None:
    seen: list[Row] = []
    after: str | None = None
    for _ in range(50):
        pages = []
        for n in nodes:
            rows = [n[k] for k in sorted(n) if after is None or k > after][:limit]
            pages.append((rows, rows[-1].key if len(rows) == limit else None))
        rows, after = merge_pages(pages)
        seen += rows
        if after is None:
            break
    assert seen == oracle(nodes)


@given(st.lists(rows_st, max_size=6), st.randoms())
def test_the_latest_write_wins_whatever_the_order_of_the_answers(
    rows: list[Row], rnd: random.Random
) -> None:
    same_key = [msgspec.structs.replace(r, key="k") for r in rows]
    shuffled = list(same_key)
    rnd.shuffle(shuffled)
    assert latest(same_key) == latest(shuffled)
    if same_key:
        best = latest(same_key)
        assert best is not None and write_id(best) == max(map(write_id, same_key))
        assert (live(best) is None) == best.deleted
    assert latest([None]) is None


def test_a_tombstone_wins_over_an_older_live_row_and_loses_to_a_newer_one() -> None:
    old, dead, new = row("k", 1, "s1", False), row("k", 2, "s2", True), row("k", 3, "s1", False)
    assert live(latest([old, dead])) is None
    assert live(latest([dead, new])) == new


tokens = st.builds(
    SessionToken,
    versions=st.dictionaries(st.sampled_from(["store1", "store2"]), st.integers(0, 2**63 - 1)),
    hlc=st.integers(0, 2**63 - 1),
).map(lambda t: SessionToken(t.versions, {k: "0123456789abcdef" for k in t.versions}, t.hlc))


@given(tokens)
def test_the_codec_round_trips_every_token(token: SessionToken) -> None:
    assert sessiontoken.decode(sessiontoken.encode(token)) == token
    assert sessiontoken.decode(sessiontoken.encode(token).encode()) == token


@pytest.mark.parametrize("header", [None, "", "  ", b""])
def test_an_absent_or_blank_header_is_the_empty_token(header: str | bytes | None) -> None:
    assert sessiontoken.decode(header) == SessionToken()
    assert sessiontoken.from_answer(header) is None


@pytest.mark.parametrize(
    "header",
    [
        "nope",
        '{"versions": {"store1": -1}}',
        '{"epochs": {"store1": "0123456789abcdef"}}',  # an epoch naming no version
        '{"versions": {"store1": 1}, "hlc": 99999999999999999999}',
        '{"versions": {"bad name!": 1}}',
        '{"versions": {"store1": 1}, "extra": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"versions": {}, "x": "' + "a" * 17000 + '"}',
    ],
)
def test_a_malformed_header_is_refused_by_a_request_and_ignored_in_an_answer(header: str) -> None:
    with pytest.raises(ErrSyntaxInvalidArgs):
        sessiontoken.decode(header)
    assert sessiontoken.from_answer(header) is None
