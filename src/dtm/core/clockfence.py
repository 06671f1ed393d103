"""Whether a node's clock is too far from its peers' to stamp client writes: the write fence.

Rule: a node is fenced iff at least two peers answered with their clock and the measured offset to
a strict majority of them exceeds the max offset; a single answer is a tie (which of two clocks is
wrong cannot be told), so with two nodes the other components (handler, balancer, sync) break it.

An offset is measured NTP-style from one ``GET /healthz``: ``peer_now - (t_send + t_recv) / 2``,
all three in milliseconds, the two local times on the node's own physical clock. Pure: the times
are arguments.
"""

from __future__ import annotations

from collections.abc import Mapping


def offset_ms(t_send: int, t_recv: int, peer_now: int) -> int:
    """The peer's clock minus ours, assuming the answer was made halfway through the round trip."""
    return peer_now - (t_send + t_recv) // 2


def sample(t_send: int, t_recv: int, peer_now: int, max_offset_ms: int) -> int | None:
    """One measurement, or None when the round trip was too slow (or went backwards) to tell
    an offset of ``max_offset_ms`` from its own uncertainty: such a peer does not count."""
    if peer_now <= 0 or not 0 <= t_recv - t_send <= max_offset_ms:
        return None
    return offset_ms(t_send, t_recv, peer_now)


def far_peers(offsets: Mapping[str, int], max_offset_ms: int) -> list[str]:
    """The peers whose measured offset exceeds the max offset, in name order."""
    return sorted(p for p, off in offsets.items() if abs(off) > max_offset_ms)


def fenced(offsets: Mapping[str, int], max_offset_ms: int) -> bool:
    """The fence decision over the offsets of the peers that answered (see the rule above)."""
    answered = len(offsets)
    return answered >= 2 and 2 * len(far_peers(offsets, max_offset_ms)) > answered
