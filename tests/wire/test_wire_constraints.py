"""The constraints on the wire types: equal to what the system itself produces.

Every value the core or a component makes is accepted by its type (property tests over the
producers), and an out-of-range value is refused with a message naming the field's path.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtm import wire
from dtm.config import parse_config
from dtm.core import digest, hlc, keys, tasks
from dtm.core.session import contribution
from dtm.errors import DtmError, ErrSyntaxInvalidArgs
from dtm.node.main import new_epoch
from dtm.node.params import MAX_LIMIT
from dtm.storage.memory import MemoryStore


def accepts(type_: Any, value: Any) -> bool:
    try:
        msgspec.convert(value, type_)
    except msgspec.ValidationError:
        return False
    return True


def test_the_repeated_constants_equal_the_cores() -> None:
    assert wire.TASK_ID_ALPHABET == tasks.ALPHABET
    assert wire.TASK_ID_LEN == tasks.ID_LEN
    assert wire.MAX_TASK_TEXT == tasks.MAX_TEXT
    assert wire.MAX_CANDIDATES == tasks.MAX_CANDIDATES
    assert (wire.MAX_TAGS, wire.MAX_TAG_LEN) == (tasks.MAX_TAGS, tasks.MAX_TAG_LEN)
    assert wire.MAX_BUCKETS == digest.MAX_BUCKETS
    assert wire.MAX_PAGE_ROWS == MAX_LIMIT
    assert wire.MAX_INT == hlc.MAX_STAMP
    assert len(new_epoch()) == wire.EPOCH_CHARS


# ---------------------------------------------------------------- what the system produces


@given(st.binary(min_size=tasks.ENTROPY_BYTES, max_size=tasks.ENTROPY_BYTES))
def test_every_task_id_the_core_makes_is_a_task_id(entropy: bytes) -> None:
    assert accepts(wire.TaskId, tasks.new_task_id(entropy))


@given(st.text(max_size=1200))
def test_a_task_id_is_what_the_core_calls_one(text: str) -> None:
    assert accepts(wire.TaskId, text) == tasks.is_task_id(text)


@given(st.text(max_size=1100))
def test_every_text_the_core_accepts_is_a_task_text(text: str) -> None:
    try:
        checked = tasks.check_text(text)
    except DtmError:
        return
    assert accepts(wire.TaskText, checked)


def test_a_stored_text_the_handler_would_refuse_is_still_served() -> None:
    """A row written past the handler keeps its control characters (the CLI escapes them), so
    its user still sees it and can delete it; the handler itself never makes such a text."""
    hostile = "a\x1b[2Jb"
    assert accepts(wire.StoredText, hostile) and not accepts(wire.TaskText, hostile)
    with pytest.raises(DtmError):
        tasks.check_text(hostile)


# Up to the last millisecond of year 9999, the last that ISO 8601's four digits hold.
@given(st.integers(0, 253_402_300_799_999))
def test_every_time_the_core_writes_is_an_iso_time(now_ms: int) -> None:
    assert accepts(wire.IsoTime, tasks.iso_ms(now_ms))
    value = tasks.new_value("x", now_ms)
    assert wire.decode(wire.encode(value), wire.TaskValue) == value


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=140))
def test_a_key_is_exactly_what_the_key_rule_allows(text: str) -> None:
    assert accepts(wire.Key, text) == keys.is_valid_key(text)


@given(st.from_regex(r"[A-Za-z0-9._:-]{1,128}", fullmatch=True))
def test_every_valid_key_is_a_key(key: str) -> None:
    assert accepts(wire.Key, key)


def test_a_trailing_newline_is_not_part_of_a_valid_value() -> None:
    assert not accepts(wire.Key, "k1\n") and not keys.is_valid_key("k1\n")
    assert not accepts(wire.NodeName, "store1\n") and not accepts(wire.Epoch, "0" * 15 + "\n")


def _config(name: str) -> str:
    return f'[[node]]\nname = "{name}"\nport = 7411\n'


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters='"\\'), max_size=70))
def test_a_node_name_is_one_the_config_accepts(name: str) -> None:
    try:
        parse_config(_config(name))
        config_ok = True
    except ErrSyntaxInvalidArgs:
        config_ok = False
    assert accepts(wire.NodeName, name) == config_ok


@given(st.integers(0, 2**47 - 1), st.integers(0, 2**63 - 1))
def test_every_stamp_the_clock_issues_is_a_stamp(now_ms: int, last: int) -> None:
    clock = hlc.HLC(min(last, 2**63 - 2))
    _, stamp = clock.tick(now_ms)
    if stamp <= wire.MAX_INT:
        assert accepts(wire.Stamp, stamp)
    assert not accepts(wire.Stamp, wire.MAX_INT + 1) and not accepts(wire.Stamp, -1)


def test_every_digest_bucket_is_a_bucket_hash() -> None:
    rows = [wire.Row(f"k{i}", msgspec.Raw(b"1"), False, i + 1, i + 1, "store1") for i in range(50)]
    hashes = digest.digest(rows, 16)
    d = wire.Digest("store1", new_epoch(), 50, hashes)
    assert wire.decode(wire.encode(d), wire.Digest) == d


async def test_what_a_store_serves_round_trips_through_the_wire_types() -> None:
    clock = iter(range(1_764_547_200_000, 1_764_547_300_000))
    store = MemoryStore("store1", new_epoch(), lambda: next(clock))
    value = wire.encode(tasks.new_value("Buy milk", 1_764_547_200_000))
    put = await store.put(tasks.new_task_id(b"\x01" * 8), msgspec.Raw(value))
    gone = await store.delete(put.key)
    await store.put("plain:key", msgspec.Raw(b'{"a":[1,2]}'), seen_hlc=put.hlc)
    rows = store.changes(0, 100)
    page = wire.ChangesPage(store.node, store.epoch, store.last_version(), rows)
    assert wire.decode(wire.encode(page), wire.ChangesPage) == page
    batch = wire.ReplicateRequest(store.node, store.epoch, store.last_version(), rows)
    assert wire.decode(wire.encode(batch), wire.ReplicateRequest) == batch
    purge = wire.PurgeRequest([wire.RowId(gone.key, gone.hlc, gone.origin)])
    assert wire.decode(wire.encode(purge), wire.PurgeRequest) == purge
    token = contribution(store.node, store.epoch, store.last_version(), store.stats().hlc)
    assert wire.decode(wire.encode(token), wire.SessionToken) == token


# ---------------------------------------------------------------- refused, naming the field

_ROW: dict[str, Any] = {
    "key": "k1",
    "value": 1,
    "deleted": False,
    "version": 1,
    "hlc": 5,
    "origin": "store1",
}
_EPOCH = "0123456789abcdef"


def _batch(**row: Any) -> dict[str, Any]:
    return {"source": "store2", "epoch": _EPOCH, "source_version": 1, "rows": [_ROW | row]}


@pytest.mark.parametrize(
    "type_, data, path",
    [
        (wire.ReplicateRequest, _batch(hlc=2**63), "$.rows[0].hlc"),
        (wire.ReplicateRequest, _batch(hlc=-1), "$.rows[0].hlc"),
        (wire.ReplicateRequest, _batch(version=-1), "$.rows[0].version"),
        (wire.ReplicateRequest, _batch(key="bad key"), "$.rows[0].key"),
        (wire.ReplicateRequest, _batch(key="k" * 129), "$.rows[0].key"),
        (wire.ReplicateRequest, _batch(origin=""), "$.rows[0].origin"),
        (wire.ReplicateRequest, _batch() | {"epoch": "e2"}, "$.epoch"),
        (wire.ReplicateRequest, _batch() | {"target_epoch": "e2"}, "$.target_epoch"),
        (wire.ReplicateRequest, _batch() | {"source": ""}, "$.source"),
        (wire.ReplicateRequest, _batch() | {"source_version": 2**63}, "$.source_version"),
        (wire.PurgeRequest, {"rows": [{"key": "k", "hlc": 2**64, "origin": "s"}]}, "$.rows[0].hlc"),
        (wire.SessionToken, {"hlc": 10**19}, "$.hlc"),
        (wire.SessionToken, {"versions": {"store1": -1}}, "$.versions[...]"),
        (wire.SessionToken, {"versions": {"a b": 1}}, "key` in `$.versions"),
        (
            wire.TaskValue,
            {"text": "", "status": "open", "created": "x", "updated": "x"},
            "$.text",
        ),
        (
            wire.TaskValue,
            {"text": "a", "status": "open", "created": "2026", "updated": "x"},
            "$.created",
        ),
        (
            wire.ChangesPage,
            {"node": "s", "epoch": _EPOCH, "last_version": 0, "rows": [_ROW] * (MAX_LIMIT + 1)},
            "$.rows",
        ),
    ],
)
def test_an_out_of_range_field_is_refused_naming_it(type_: Any, data: Any, path: str) -> None:
    with pytest.raises(ErrSyntaxInvalidArgs) as info:
        wire.decode(wire.encode(data), type_)
    assert f"at `{path}`" in info.value.message, info.value.message


def test_the_wire_module_has_no_unconstrained_integer_field() -> None:
    """Every int field of every message carries a range (a bool is not an int here)."""
    schema = msgspec.json.schema_components(
        [t for t in vars(wire).values() if isinstance(t, type) and issubclass(t, wire.Wire)]
    )[1]
    loose = [
        f"{name}.{field}"
        for name, s in schema.items()
        for field, prop in s.get("properties", {}).items()
        if prop.get("type") == "integer" and "maximum" not in prop
    ]
    assert loose == []


def test_every_pattern_is_anchored_at_both_ends() -> None:
    text = msgspec.json.encode(
        msgspec.json.schema_components(
            [t for t in vars(wire).values() if isinstance(t, type) and issubclass(t, wire.Wire)]
        )[1]
    ).decode()
    patterns = re.findall(r'"pattern":"((?:[^"\\]|\\.)*)"', text)
    assert patterns and all(p.startswith("^") and p.endswith(r"(?![\\s\\S])") for p in patterns)
