"""The sync engine's bounded memories: at least the last ``cap`` keys, at most twice that."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from dtm.core.syncmemo import Held, Inbox, Lru
from dtm.wire import Row


def row(key: str, hlc: int, origin: str = "a") -> Row:
    return Row(key, msgspec.Raw(b"1"), False, 1, hlc, origin)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.tuples(st.integers(0, 30), st.integers(1, 9)), max_size=12), max_size=12),
    st.integers(1, 8),
)
def test_held_remembers_the_newest_write_of_its_last_cap_keys(
    pages: list[list[tuple[int, int]]], cap: int
) -> None:
    held, lru = Held(cap), Lru(cap)
    newest: dict[str, tuple[int, str]] = {}
    last: dict[str, tuple[int, str]] = {}
    order: list[str] = []  # keys by when they were last taken in
    for page in pages:
        rows = [row(f"k{k}", h) for k, h in page]
        held.note_all(rows)
        lru.put_all(rows)
        for r in rows:
            newest[r.key] = max(newest.get(r.key, (0, "")), (r.hlc, r.origin))
            last[r.key] = (r.hlc, r.origin)
            order = [k for k in order if k != r.key] + [r.key]
        assert len(held.young) + len(held.old) <= 2 * cap
        for key in order[-cap:]:
            # at least the last write it was told of, never one it was not told of
            assert last[key] <= held[key] <= newest[key]
            assert held.holds(row(key, last[key][0]))
            assert not held.holds(row(key, newest[key][0] + 1))
            got = lru.get(key)
            assert got is not None and got.key == key
        assert set(held) <= set(newest) and len(held) == len(list(held))


def test_a_delivery_is_its_row_and_the_batch_receipt() -> None:
    inbox = Inbox(2)
    inbox.put_all("s", "t", 7, [row("a", 1), row("b", 2)])
    d = inbox.delivery("a")
    assert d is not None and (d.source, d.target, d.row.key, d.ack) == ("s", "t", "a", 7)
    inbox.put_all("s", "t", 9, [row("c", 3), row("d", 4), row("e", 5)])
    assert inbox.delivery("a") is None and inbox.delivery("e") is not None
    inbox.clear()
    assert not inbox and inbox.delivery("e") is None
