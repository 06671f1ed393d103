"""A node page's validator: a caller's copy is "not modified" exactly when one of the tags it
offers is the node's current tag; a tag names node, epoch, version and byte cap, so a write
(a new version), a wipe (a new epoch) or another cap never matches an old copy."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dtm.core.pagetag import MAX_TAGS, not_modified, offered, page_tag

names = st.sampled_from(["store1", "store2", "n-3"])
epochs = st.text("0123456789abcdef", min_size=16, max_size=16)
versions = st.integers(0, 2**63 - 1)
caps = st.integers(1, 2**31)


@given(names, epochs, versions, caps, names, epochs, versions, caps)
def test_two_tags_are_equal_only_for_the_same_node_epoch_version_and_cap(
    n1: str, e1: str, v1: int, c1: int, n2: str, e2: str, v2: int, c2: int
) -> None:
    same = (n1, e1, v1, c1) == (n2, e2, v2, c2)
    assert (page_tag(n1, e1, v1, c1) == page_tag(n2, e2, v2, c2)) == same
    assert not_modified(page_tag(n1, e1, v1, c1), page_tag(n2, e2, v2, c2)) == same


@given(st.lists(st.tuples(names, epochs, versions), max_size=MAX_TAGS - 1), names, epochs, versions)
def test_a_copy_is_current_iff_the_current_tag_is_among_those_offered(
    held: list[tuple[str, str, int]], node: str, epoch: str, version: int
) -> None:
    tags = [page_tag(n, e, v, 4096) for n, e, v in held]
    current = page_tag(node, epoch, version, 4096)
    assert not_modified(", ".join(tags), current) == (current in tags)
    assert not_modified(",".join([*tags, current]), current)


def test_weak_wildcard_and_malformed_tags_are_never_a_match() -> None:
    tag = page_tag("store1", "0" * 16, 7, 4096)
    for header in (None, "", "*", "W/" + tag, tag[1:], tag[:-1], '"a"b"', " , ,"):
        assert not not_modified(header, tag), header
    assert offered(f" {tag} ,\t{tag}") == [tag, tag]


def test_no_more_tags_are_read_than_a_caller_may_offer() -> None:
    tags = [page_tag("store1", "0" * 16, v, 4096) for v in range(MAX_TAGS + 5)]
    assert len(offered(", ".join(tags))) == MAX_TAGS
    assert not not_modified(", ".join(tags), tags[-1])  # past the cap: not even looked at
