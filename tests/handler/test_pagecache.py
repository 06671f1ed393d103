"""The handler's copies of node pages: offered by target, served by the tag a 304 names, one per
node and target, within the byte budget (least recently used out first), and what is derived
from a body kept with it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dtm.handler.pagecache import Copy, PageCache

T = "/v1/kv?limit=2000&after=tester."


def body(n: int, fill: bytes = b"x") -> bytes:
    return b'{"rows":[],"next":null,"pad":"' + fill * n + b'"}'


def test_a_held_copy_is_offered_and_served_by_the_tag_the_node_names() -> None:
    c = PageCache(1 << 20)
    assert c.offer(T) is None
    b1, b2 = body(10), body(20)
    c.put(Copy(T, "store1", '"s1.e.5.9"', b1, "sess1"))
    c.put(Copy(T, "store2", '"s2.e.8.9"', b2, "sess2"))
    assert c.offer(T) == '"s1.e.5.9", "s2.e.8.9"'
    got = c.get(T, '"s2.e.8.9"')
    assert got is not None and got.body is b2 and got.session == "sess2"
    assert c.get(T, '"s2.e.7.9"') is None and c.get(T, None) is None
    assert c.get("/v1/kv?limit=1", '"s1.e.5.9"') is None  # another target holds nothing
    assert c.hits == 1


def test_a_newer_page_of_the_same_node_replaces_the_older() -> None:
    c = PageCache(1 << 20)
    c.put(Copy(T, "store1", '"s1.e.5.9"', body(10), None))
    c.put(Copy(T, "store1", '"s1.e.6.9"', body(10), None))
    assert c.offer(T) == '"s1.e.6.9"' and len(c) == 1
    assert c.get(T, '"s1.e.5.9"') is None


def test_the_copies_held_for_a_target_are_one_per_node_with_the_claim_they_came_with() -> None:
    c = PageCache(1 << 20)
    assert c.held(T) == []
    c.put(Copy(T, "store1", '"s1.e.5.9"', body(10), None, ("e", 5)))
    c.put(Copy(T, "store2", '"s2.f.8.9"', body(10), None))
    c.put(Copy(T, "store1", '"s1.e.6.9"', body(10), None, ("e", 6)))
    held = {copy.node: (copy.tag, copy.epoch, copy.version) for copy in c.held(T)}
    assert held == {"store1": ('"s1.e.6.9"', "e", 6), "store2": ('"s2.f.8.9"', None, 0)}
    assert c.held("/v1/kv?limit=1") == []


@given(st.lists(st.tuples(st.integers(0, 30), st.integers(1, 4), st.integers(0, 3000))))
def test_the_budget_holds_and_the_index_matches_the_copies(
    puts: list[tuple[int, int, int]],
) -> None:
    c = PageCache(20_000)
    for target, node, size in puts:
        c.put(Copy(f"t{target}", f"store{node}", f'"{target}.{node}.{size}"', body(size), None))
        assert c.bytes <= 20_000
        assert c.bytes == sum(x.size for x in c._copies.values())
    for key, copy in c._copies.items():
        assert key == (copy.target, copy.tag)
        assert c._tags[copy.target][copy.node] == copy.tag
    assert sum(len(nodes) for nodes in c._tags.values()) == len(c)


def test_the_least_recently_used_copy_goes_first_and_a_huge_page_is_not_kept() -> None:
    c = PageCache(10_000)  # four copies of body(1000) fit, not five
    for name in "abcd":
        c.put(Copy(name, "store1", f'"{name}"', body(1000), None))
    c.get("a", '"a"')  # a is used again: b is now the oldest
    c.put(Copy("e", "store1", '"e"', body(1000), None))
    assert [x for x in "abcde" if c.offer(x)] == ["a", "c", "d", "e"]
    c.put(Copy("f", "store1", '"f"', body(5000), None))  # over a quarter of the budget
    assert c.offer("f") is None and len(c) == 4
    assert PageCache(0).offer("a") is None


def test_what_is_derived_from_a_held_body_is_computed_once() -> None:
    c = PageCache(1 << 20)
    held, calls = body(10), []

    def derive(b: bytes) -> int:
        calls.append(b)
        return len(b)

    c.put(Copy(T, "store1", '"s1"', held, None))
    assert c.view(held, "n", derive) == c.view(held, "n", derive) == len(held)
    assert len(calls) == 1
    other = held[:1] + held[1:]  # equal, but not the held body: computed each time
    c.view(other, "n", derive)
    c.view(other, "n", derive)
    assert len(calls) == 3
