"""Key validation and row digests."""

from __future__ import annotations

import random

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtm.core.digest import bucket_of, digest
from dtm.core.keys import check_key, is_valid_key
from dtm.errors import ErrSyntaxInvalidArgs
from dtm.wire import Row


@pytest.mark.parametrize("key", ["a", "A.b_c:d-9", "x" * 128, "0123456789abcdef"])
def test_valid_keys(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize("key", ["", "x" * 129, "a b", "a/b", "é", "a\n", "a%2F", "../x"])
def test_invalid_keys_name_the_rule(key: str) -> None:
    assert not is_valid_key(key)
    with pytest.raises(ErrSyntaxInvalidArgs, match="A-Z a-z 0-9"):
        check_key(key)


rows = st.lists(
    st.builds(
        Row,
        key=st.text("abcdef", min_size=1, max_size=4),
        value=st.just(msgspec.Raw(b"1")),
        deleted=st.booleans(),
        version=st.integers(1, 9),
        hlc=st.integers(0, 99),
        origin=st.sampled_from(["s1", "s2"]),
    ),
    unique_by=lambda r: r.key,
)


@given(rows, st.integers(1, 64), st.randoms(use_true_random=False))
def test_digest_ignores_order_and_local_versions(
    rs: list[Row], buckets: int, rnd: random.Random
) -> None:
    shuffled = [
        Row(r.key, r.value, r.deleted, rnd.randint(1, 99), r.hlc, r.origin)
        for r in rnd.sample(rs, len(rs))
    ]
    assert digest(rs, buckets) == digest(shuffled, buckets)


@given(rows.filter(bool), st.integers(1, 64))
def test_digest_sees_a_changed_write(rs: list[Row], buckets: int) -> None:
    r = rs[0]
    changed = [Row(r.key, r.value, r.deleted, r.version, r.hlc + 1, r.origin), *rs[1:]]
    d1, d2 = digest(rs, buckets), digest(changed, buckets)
    assert d1 != d2 and d1[bucket_of(r.key, buckets)] != d2[bucket_of(r.key, buckets)]
