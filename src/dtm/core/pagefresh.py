"""When the handler may serve a node page it holds without asking the node again.

Rule: a copy of node n's page taken at (epoch e, version v) is served as it is iff the handler's
mark of n — n's epoch, version and applied feeds as n last reported them, received at most
`MARK_TTL_MS` ago — is at e and v exactly and meets the session's token (`dtm.core.session`);
otherwise the node is asked (If-None-Match, `dtm.core.pagetag`).

A node reports a new mark as soon as its version moves (a long-poll of its status), and at least
every `WATCH_WAIT_MS` while it does not, so a copy served this way is at most one report behind
its node: by the watcher's pause between reports and a round trip (about 10 ms) while the node
answers, by `MARK_TTL_MS` at worst when it stops answering. That is the price of a list without
a round trip: a write that did not pass through this handler (another handler's, or the sync's
copy of one) may be missing from lists of other sessions for that long. The session's own
writes never are: its token names them, and a mark that does not meet the token serves nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from dtm.core.session import unmet
from dtm.wire import PeerApplied, SessionToken

WATCH_WAIT_MS: Final = 1000  # a node holds a watch this long at most when nothing changes
MARK_TTL_MS: Final = WATCH_WAIT_MS + 500  # a mark older than this no longer vouches for a copy


@dataclass(frozen=True, slots=True)
class Mark:
    """What node ``node`` last reported of itself, and when (the watcher's clock, ms)."""

    node: str
    epoch: str
    version: int
    applied: Mapping[str, PeerApplied]
    at_ms: float


def servable(
    mark: Mark | None, now_ms: float, epoch: str, version: int, token: SessionToken
) -> bool:
    """May a copy of ``mark.node``'s page at (``epoch``, ``version``) be served to a session
    holding ``token`` without asking the node? (See the module's rule.)"""
    if mark is None or now_ms - mark.at_ms > MARK_TTL_MS or now_ms < mark.at_ms:
        return False
    if mark.epoch != epoch or mark.version != version:
        return False
    return not unmet(token, mark.node, epoch, version, mark.applied)
