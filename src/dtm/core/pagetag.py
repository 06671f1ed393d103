"""The validator of a node's scan page: when a caller's copy of a page is still the page.

Rule: a live-row page is fully determined by the request target, the node's epoch, its last
version and its page byte cap, so its tag is those four (the target is the cache's key); a
conditional scan is answered "not modified" iff one of the caller's tags is exactly the node's
current tag. Deleted rows are not tagged: a purge drops them without a new version.
"""

from __future__ import annotations

from typing import Final

MAX_TAGS: Final = 16  # tags a caller may offer at once (one per node it holds a copy from)


def page_tag(node: str, epoch: str, version: int, max_page_bytes: int) -> str:
    """The ETag (quoted, strong) of a live-row page ``node`` serves at ``version``."""
    return f'"{node}.{epoch}.{version}.{max_page_bytes}"'


def offered(if_none_match: str | None) -> list[str]:
    """The strong tags of an If-None-Match value (weak ones and ``*`` are never ours), at most
    `MAX_TAGS` of them; anything malformed is no tag."""
    if not if_none_match:
        return []
    tags = [t.strip() for t in if_none_match.split(",", MAX_TAGS)[:MAX_TAGS]]
    return [t for t in tags if len(t) >= 2 and t[0] == t[-1] == '"' and '"' not in t[1:-1]]


def not_modified(if_none_match: str | None, current: str) -> bool:
    """Does the caller already hold the page ``current`` tags?"""
    return current in offered(if_none_match)
