"""User names, the per-user key namespace, and tokens (dtm.core.users)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtm.core import tasks, users
from dtm.core.keys import is_valid_key
from dtm.errors import ErrSyntaxInvalidArgs

names = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,31}", fullmatch=True)
task_ids = st.text(tasks.ALPHABET, min_size=tasks.ID_LEN, max_size=tasks.ID_LEN)
id_prefixes = st.text(tasks.ALPHABET, min_size=0, max_size=tasks.ID_LEN)
keys = st.from_regex(r"[A-Za-z0-9._:-]{1,60}", fullmatch=True)


@pytest.mark.parametrize("name", ["local", "bob", "a", "x" * 32, "user_2", "0day", "a-b"])
def test_valid_names(name: str) -> None:
    assert users.check_user_name(name) == name


@pytest.mark.parametrize("name", ["", "x" * 33, "Bob", "a.b", "a:b", "-a", "_a", "é", "a b"])
def test_invalid_names_name_the_rule(name: str) -> None:
    with pytest.raises(ErrSyntaxInvalidArgs, match="a-z 0-9 _ -"):
        users.check_user_name(name)


@given(names, task_ids)
def test_a_task_key_is_a_valid_key_and_gives_its_id_back(user: str, task_id: str) -> None:
    key = users.task_key(user, task_id)
    assert is_valid_key(key)
    assert users.task_id_of(user, key) == task_id


@given(names, names, task_ids)
def test_no_user_sees_another_users_key(a: str, b: str, task_id: str) -> None:
    if a != b:
        assert users.task_id_of(b, users.task_key(a, task_id)) is None
        assert not users.task_key(a, task_id).startswith(users.key_prefix(b))


@given(names, st.text(tasks.ALPHABET + "ABC:._-", max_size=14))
def test_a_bare_or_foreign_key_is_no_task_of_the_user(user: str, rest: str) -> None:
    key = users.key_prefix(user) + rest
    assert (users.task_id_of(user, key) is not None) == tasks.is_task_id(rest)


@given(names, id_prefixes, st.lists(keys, max_size=30))
def test_the_scan_window_is_exactly_the_users_prefixed_keys(
    user: str, id_prefix: str, others: list[str]
) -> None:
    """Scanning after scan_after(user, p) in key order sees every key with the prefix first,
    then only keys without it: so the first key outside the prefix ends the scan."""
    prefix = users.key_prefix(user) + id_prefix
    mine = [prefix + k for k in others if is_valid_key(prefix + k)]
    bound = users.scan_after(user, id_prefix)
    seen = sorted(k for k in {*mine, *others} if k > bound)
    inside = [k.startswith(prefix) for k in seen]
    assert set(mine) <= set(seen)
    assert inside == sorted(inside, reverse=True)  # all inside first, then all outside


@given(st.binary(min_size=users.TOKEN_BYTES, max_size=users.TOKEN_BYTES))
def test_tokens_are_plain_and_only_their_hash_is_kept(entropy: bytes) -> None:
    token = users.new_token(entropy)
    assert token.startswith(users.TOKEN_PREFIX) and len(token) == len(users.TOKEN_PREFIX) + 43
    assert token.isascii() and " " not in token
    digest = users.token_hash(token)
    assert users.is_token_hash(digest) and token not in digest


def test_who_holds_a_token() -> None:
    a, b = users.new_token(b"a" * 32), users.new_token(b"b" * 32)
    pairs = [("alice", users.token_hash(a)), ("bob", users.token_hash(b))]
    assert users.who_holds(a, pairs) == "alice"
    assert users.who_holds(b, pairs) == "bob"
    assert users.who_holds(users.new_token(b"c" * 32), pairs) is None
    assert users.who_holds(users.token_hash(a), pairs) is None  # the hash is not the token
    assert users.who_holds(a, []) is None
