"""A message's rows are checked all at once: exactly the per-row rules, the first wrong row named.

`wire.decode` checks every `Row` key and origin of a message with one expression instead of row
by row; these tests pin that it accepts and refuses exactly what `Key` and `NodeName` do, and
that no message type holding rows escapes the check.
"""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtm import wire
from dtm.core import keys
from dtm.errors import ErrSyntaxInvalidArgs

_EPOCH = "0123456789abcdef"
_KEYS = st.one_of(
    st.from_regex(r"[A-Za-z0-9._:-]{1,128}", fullmatch=True),
    st.text(alphabet=st.sampled_from("ab:.\n\r\t -é\x00"), max_size=6),
    st.text(max_size=130),
)
_NAMES = st.one_of(st.sampled_from(["store1", "store-2", "n_3"]), st.text(max_size=66))


def _row(key: str, origin: str = "store1") -> dict[str, Any]:
    return {"key": key, "value": 1, "deleted": False, "version": 1, "hlc": 5, "origin": origin}


def _page(rows: list[dict[str, Any]]) -> bytes:
    return wire.encode({"node": "store1", "epoch": _EPOCH, "last_version": 1, "rows": rows})


def _strictly(key: str, origin: str) -> bool:
    return keys.is_valid_key(key) and wire.is_node_name(origin)


@given(st.lists(st.tuples(_KEYS, _NAMES), max_size=8))
def test_a_page_is_accepted_exactly_when_every_row_is(pairs: list[tuple[str, str]]) -> None:
    data = _page([_row(k, o) for k, o in pairs])
    try:
        wire.decode(data, wire.ChangesPage)
        accepted = True
    except ErrSyntaxInvalidArgs:
        accepted = False
    assert accepted == all(_strictly(k, o) for k, o in pairs)


@pytest.mark.parametrize(
    "rows, path",
    [
        ([_row("k1"), _row("k2"), _row("a\nb")], "$.rows[2].key"),  # one key, two "lines"
        ([_row("k1"), _row("k1\n")], "$.rows[1].key"),
        ([_row("k1"), _row("")], "$.rows[1].key"),
        ([_row("ok"), _row("ok", "bad name")], "$.rows[1].origin"),
        ([_row("ok", "x\n")], "$.rows[0].origin"),
    ],
)
def test_the_first_wrong_row_is_named(rows: list[dict[str, Any]], path: str) -> None:
    with pytest.raises(ErrSyntaxInvalidArgs) as info:
        wire.decode(_page(rows), wire.ChangesPage)
    assert f"at `{path}`" in info.value.message, info.value.message


def test_a_bare_row_and_a_batch_answer_are_checked_too() -> None:
    with pytest.raises(ErrSyntaxInvalidArgs, match=r"at `\$\.key`"):
        wire.decode(wire.encode(_row("no way")), wire.Row)
    answer = {"applied": 0, "ignored": 1, "last_version": 1, "losers": [_row("k"), _row("k k")]}
    with pytest.raises(ErrSyntaxInvalidArgs, match=r"at `\$\.losers\[1\]\.key`"):
        wire.decode(wire.encode(answer), wire.ReplicateResponse)


def _holds_rows(t: mi.Type, seen: set[type]) -> bool:
    if isinstance(t, mi.StructType):
        if t.cls is wire.Row:
            return True
        if t.cls in seen:
            return False
        seen.add(t.cls)
        return any(_holds_rows(f.type, seen) for f in t.fields)
    if isinstance(t, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
        return _holds_rows(t.item_type, seen)
    if isinstance(t, mi.DictType):
        return _holds_rows(t.value_type, seen)
    if isinstance(t, mi.UnionType):
        return any(_holds_rows(u, seen) for u in t.types)
    if isinstance(t, mi.TupleType):
        return any(_holds_rows(u, seen) for u in t.item_types)
    return False


def test_every_message_holding_rows_has_its_rows_checked() -> None:
    types = [t for t in vars(wire).values() if isinstance(t, type) and issubclass(t, wire.Wire)]
    holding = {t for t in types if _holds_rows(mi.type_info(t), set())}
    assert holding == set(wire.ROWS_AT)


def test_the_documents_still_show_the_row_patterns() -> None:
    row = msgspec.json.schema(wire.Row)["$defs"]["Row"]["properties"]
    assert row["key"]["pattern"] == wire.KEY_PATTERN
    assert row["origin"]["pattern"] == wire.NODE_NAME_PATTERN
