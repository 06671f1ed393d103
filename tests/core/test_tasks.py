"""The task core: IDs, references, text rules, values and list order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dtm.core import tasks
from dtm.core.keys import is_valid_key
from dtm.errors import ErrAmbiguousID, ErrNoDataFound, ErrPayloadTooLarge, ErrSyntaxInvalidArgs
from dtm.wire import Task, TaskValue, UpdateTask

entropy = st.binary(min_size=tasks.ENTROPY_BYTES, max_size=tasks.ENTROPY_BYTES)
task_ids = entropy.map(tasks.new_task_id)
id_chars = st.sampled_from(tasks.ALPHABET)


# ---------------------------------------------------------------- IDs


@given(entropy)
def test_new_id_is_twelve_crockford_characters(raw: bytes) -> None:
    tid = tasks.new_task_id(raw)
    assert len(tid) == 12
    assert set(tid) <= set(tasks.ALPHABET)
    assert tasks.is_task_id(tid)
    assert is_valid_key(tid)


def test_new_id_uses_every_bit_it_claims() -> None:
    assert tasks.new_task_id(bytes(8)) == "000000000000"
    assert tasks.new_task_id(b"\xff" * 8) == "zzzzzzzzzzzz"
    # The top 60 bits decide the ID: the lowest 4 bits are unused.
    assert tasks.new_task_id(b"\x00" * 7 + b"\x0f") == "000000000000"
    assert tasks.new_task_id(b"\x00" * 7 + b"\x10") == "000000000001"


def test_new_id_needs_the_right_amount_of_entropy() -> None:
    with pytest.raises(ValueError):
        tasks.new_task_id(b"short")


def test_ids_from_distinct_randomness_differ() -> None:
    rng = random.Random(7)
    ids = {tasks.new_task_id(rng.randbytes(8)) for _ in range(20000)}
    assert len(ids) == 20000


@pytest.mark.parametrize(
    ("ref", "norm"),
    [("ABCD", "abcd"), ("  abcd ", "abcd"), ("o0il", "0011"), ("zzzzzzzzzzzz", "zzzzzzzzzzzz")],
)
def test_normalize_ref(ref: str, norm: str) -> None:
    assert tasks.normalize_ref(ref) == norm


@pytest.mark.parametrize("ref", ["", "1", "abc", "abcu", "ab-d", "abcd!", "a" * 13, "ab d"])
def test_bad_refs_are_syntax_errors(ref: str) -> None:
    with pytest.raises(ErrSyntaxInvalidArgs) as info:
        tasks.normalize_ref(ref)
    assert type(info.value) is ErrSyntaxInvalidArgs


def test_short_ref_message_says_four() -> None:
    with pytest.raises(ErrSyntaxInvalidArgs, match="at least 4"):
        tasks.normalize_ref("1")


# ---------------------------------------------------------------- scan bound


@given(st.text(id_chars, min_size=1, max_size=12), st.lists(task_ids, max_size=30))
def test_scan_bound_starts_exactly_at_the_prefix(prefix: str, ids: list[str]) -> None:
    bound = tasks.scan_bound(prefix)
    assert is_valid_key(bound)
    assert bound < prefix
    matching = [i for i in ids if i.startswith(prefix)]
    above = sorted(i for i in ids if i.encode() > bound.encode())
    # Every matching key is above the bound, and the first keys above it are the matches.
    assert above[: len(matching)] == sorted(matching)


@given(st.text(st.sampled_from("-._:09AZaz_"), min_size=1, max_size=5), st.text(max_size=3))
def test_no_valid_key_lies_between_bound_and_prefix(prefix: str, tail: str) -> None:
    bound = tasks.scan_bound(prefix)
    candidate = (prefix[:-1] + tail)[:128]
    if is_valid_key(candidate) and bound < candidate:
        assert candidate >= prefix or candidate == bound


# ---------------------------------------------------------------- resolution


def test_resolve_one_match() -> None:
    assert tasks.resolve_ref("abcd", "abcd", ["abcd00000000"]).id == "abcd00000000"


def test_resolve_none_names_the_ref() -> None:
    with pytest.raises(ErrNoDataFound, match="no task with ID 'ABC1'"):
        tasks.resolve_ref("ABC1", "abc1", ["abcd00000000"])


def test_resolve_ambiguous_lists_candidates() -> None:
    ids = ["abcd00000000", "abcd11111111", "abce00000000"]
    with pytest.raises(ErrAmbiguousID) as info:
        tasks.resolve_ref("abcd", "abcd", ids)
    err = info.value
    assert isinstance(err, ErrAmbiguousID)
    assert err.candidates == ("abcd00000000", "abcd11111111")
    assert "abcd00000000" in err.message and "abcd11111111" in err.message


def test_resolve_with_more_unseen_is_ambiguous() -> None:
    with pytest.raises(ErrAmbiguousID) as info:
        tasks.resolve_ref("abcd", "abcd", ["abcd00000000"], more=True)
    assert info.value.candidates == ("abcd00000000",)
    assert "…" in info.value.message


def test_resolve_caps_candidates() -> None:
    ids = [f"abcd{n:08d}" for n in range(15)]
    with pytest.raises(ErrAmbiguousID) as info:
        tasks.resolve_ref("abcd", "abcd", ids)
    assert len(info.value.candidates) == tasks.MAX_CANDIDATES


@settings(max_examples=60)
@given(st.lists(task_ids, min_size=1, max_size=40, unique=True))
def test_every_prefix_of_every_id_resolves_or_is_ambiguous(ids: list[str]) -> None:
    for tid in ids:
        for n in range(tasks.MIN_PREFIX, tasks.ID_LEN + 1):
            prefix = tid[:n]
            sharing = sorted(i for i in ids if i.startswith(prefix))
            if len(sharing) == 1:
                assert tasks.resolve_ref(prefix, prefix, ids).id == tid
            else:
                with pytest.raises(ErrAmbiguousID) as info:
                    tasks.resolve_ref(prefix, prefix, ids)
                assert list(info.value.candidates) == sharing[: tasks.MAX_CANDIDATES]


# ---------------------------------------------------------------- short IDs


@given(st.lists(task_ids, max_size=60, unique=True))
def test_short_ids_are_unique_and_resolve(ids: list[str]) -> None:
    short = tasks.short_ids(ids)
    assert set(short) == set(ids)
    assert len(set(short.values())) == len(ids)
    for tid, s in short.items():
        assert len(s) >= tasks.MIN_PREFIX
        assert tid.startswith(s)
        assert tasks.resolve_ref(s, s, ids).id == tid
        # ... and it is the shortest such prefix.
        if len(s) > tasks.MIN_PREFIX:
            shorter = s[:-1]
            assert sum(i.startswith(shorter) for i in ids) > 1


@given(st.lists(st.text(id_chars, min_size=2, max_size=6), max_size=30, unique=True))
def test_short_ids_of_ids_that_prefix_each_other(ids: list[str]) -> None:
    short = tasks.short_ids(ids, minimum=1)
    for tid, s in short.items():
        others = [i for i in ids if i != tid and i.startswith(s)]
        assert not others or s == tid


def test_short_ids_example() -> None:
    assert tasks.short_ids(["abcdef000000", "abcdeg000000", "zzzz00000000"]) == {
        "abcdef000000": "abcdef",
        "abcdeg000000": "abcdeg",
        "zzzz00000000": "zzzz",
    }


# ---------------------------------------------------------------- text


@pytest.mark.parametrize(
    "text",
    [
        'say "hi"',
        "back\\slash",
        "日本語のタスク ✓",
        "-leading dash",
        "--",
        "émoji 🎉",
        "x" * 1000,
        "it's",
    ],
)
def test_text_round_trips(text: str) -> None:
    assert tasks.check_text(text) == text


def test_text_is_stripped() -> None:
    assert tasks.check_text("  Buy groceries  ") == "Buy groceries"
    assert tasks.check_text(" " * 5 + "x" * 1000 + " " * 5) == "x" * 1000


@pytest.mark.parametrize("text", ["", "   ", "\u3000"])
def test_empty_text_is_rejected(text: str) -> None:
    with pytest.raises(ErrSyntaxInvalidArgs, match="empty"):
        tasks.check_text(text)


def test_long_text_is_too_large() -> None:
    with pytest.raises(ErrPayloadTooLarge, match="1001 characters"):
        tasks.check_text("x" * 1001)


@pytest.mark.parametrize("ch", ["\t", "\n", "\r", "\x00", "\x1b", "\x7f", "\x85", "\x9f"])
def test_control_characters_are_rejected(ch: str) -> None:
    with pytest.raises(ErrSyntaxInvalidArgs, match="control character") as info:
        tasks.check_text(f"a{ch}b")
    assert type(info.value) is ErrSyntaxInvalidArgs


@pytest.mark.parametrize("text", ["trailing newline\n", "\tleading tab", "nel\x85", "us\x1f"])
def test_surrounding_control_characters_are_rejected_too(text: str) -> None:
    with pytest.raises(ErrSyntaxInvalidArgs, match="control character"):
        tasks.check_text(text)


@given(st.text(max_size=1100))
def test_check_text_accepts_exactly_the_valid_texts(text: str) -> None:
    t = text.strip()
    valid = (
        0 < len(t) <= tasks.MAX_TEXT
        and not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)
        and not any(0xD800 <= ord(c) <= 0xDFFF for c in text)
    )
    if valid:
        assert tasks.check_text(text) == t
    else:
        with pytest.raises(ErrSyntaxInvalidArgs):
            tasks.check_text(text)


# ---------------------------------------------------------------- values and order


def test_iso_ms() -> None:
    assert tasks.iso_ms(0) == "1970-01-01T00:00:00.000Z"
    assert tasks.iso_ms(1_767_225_845_007) == "2026-01-01T00:04:05.007Z"
    assert tasks.iso_ms(1_767_225_845_999) == "2026-01-01T00:04:05.999Z"


@given(st.integers(0, 253_402_300_799_999))  # to the end of year 9999
def test_iso_ms_is_the_instant_in_utc(now_ms: int) -> None:
    dt = datetime.fromtimestamp(now_ms // 1000, tz=UTC) + timedelta(milliseconds=now_ms % 1000)
    assert tasks.iso_ms(now_ms) == dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_new_value() -> None:
    v = tasks.new_value("  Buy groceries ", 1_000)
    assert v == TaskValue("Buy groceries", "open", "1970-01-01T00:00:01.000Z", v.created)


def test_update_needs_a_field() -> None:
    with pytest.raises(ErrSyntaxInvalidArgs):
        tasks.check_update(UpdateTask())
    with pytest.raises(ErrSyntaxInvalidArgs):
        tasks.check_update(UpdateTask(text="a\nb"))
    assert tasks.check_update(UpdateTask(text=" x ")) == UpdateTask(text="x")


def test_apply_update() -> None:
    v = tasks.new_value("a", 1_000)
    done = tasks.apply_update(v, UpdateTask(status="complete"), 2_000)
    assert done == TaskValue("a", "complete", v.created, "1970-01-01T00:00:02.000Z")
    assert tasks.apply_update(done, UpdateTask(status="complete"), 3_000) is None
    both = tasks.apply_update(v, UpdateTask(status="complete", text="b"), 4_000)
    assert both is not None and (both.text, both.status) == ("b", "complete")


def test_split_and_order() -> None:
    def t(i: str, created: str, status: str) -> Task:
        return Task(i, "x", status, created, created)  # type: ignore[arg-type]

    a = t("b00000000000", "2026-01-01T00:00:00.000Z", "open")
    b = t("a00000000000", "2026-01-01T00:00:00.000Z", "open")
    c = t("c00000000000", "2025-01-01T00:00:00.000Z", "complete")
    d = t("d00000000000", "2024-01-01T00:00:00.000Z", "open")
    assert tasks.split_and_order([a, b, c, d]) == ([d, b, a], [c])
