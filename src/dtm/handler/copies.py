"""How many nodes hold a write before the handler acknowledges it (``[handler] write_copies``).

Rule: a write is acknowledged once ``write_copies`` nodes hold it — the node that took it, and
others that have applied that node's feed up to the write (asked, pinned, with the write's own
session contribution and ``X-Dtm-Wait``) — or after ``copy_wait_ms`` with fewer, counted in
``dtm_handler_writes_short_of_copies``: with ``copy_shortfall = "acknowledge"`` (the default) the
write is acknowledged anyway (it stands, only less protected: availability first); with
``"refuse"`` it is answered ErrMaybeApplied (it stands on one node and may still be copied, or
be lost with that node: durability first, and writes fail while the sync is cut off).

With the default of 1 the sync copies every write after it is acknowledged, so a node that loses
its disk (a wipe) in the replication lag after an acknowledgement loses those writes; with 2 an
acknowledged write survives the loss of any one node while the sync runs. The price is the
replication lag added to every write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from dtm import wire
from dtm.errors import DtmError, ErrMaybeApplied
from dtm.handler.metrics import HandlerMetrics
from dtm.handler.session import contribution_of
from dtm.handler.upstream import Reply, Upstream


def others(nodes: Sequence[str], origin: str) -> tuple[str, ...]:
    """The nodes that can hold a second copy of a write ``origin`` took."""
    return tuple(n for n in nodes if n != origin)


class CopyWait:
    """Waits, after a write, until enough other nodes hold it (or the wait runs out)."""

    def __init__(
        self,
        upstream: Upstream,
        nodes: Sequence[str],
        metrics: HandlerMetrics,
        copies: int,
        wait_ms: int,
        refuse_short: bool = False,
    ) -> None:
        self.upstream = upstream
        self.nodes = tuple(nodes)
        self.metrics = metrics
        self.copies = copies
        self.wait_ms = wait_ms
        self.refuse_short = refuse_short

    async def held(self, key: str, reply: Reply) -> int:
        """How many nodes hold the write ``reply`` acknowledged (at least the one that took it),
        once ``copies`` do or the wait ran out (ErrMaybeApplied then, if short ones are refused)."""
        if self.copies <= 1:
            return 1
        contribution = contribution_of(reply.session)
        origin = reply.node
        if contribution is None or origin is None:
            return self._short(1, origin)
        token = f"{wire.SESSION_HEADER}: {wire.encode(contribution).decode()}\r\n"
        extra = f"{wire.WAIT_HEADER}: {self.wait_ms}\r\n{token}"
        asks = [
            asyncio.ensure_future(self._holds(key, extra, node))
            for node in others(self.nodes, origin)
        ]
        held = 1
        try:
            for done in asyncio.as_completed(asks, timeout=self.wait_ms / 1000 + 0.5):
                try:
                    held += await done
                except TimeoutError:
                    break
                if held >= self.copies:
                    return held
        finally:
            for ask in asks:
                ask.cancel()
        return self._short(held, origin)

    def _short(self, held: int, origin: str | None) -> int:
        self.metrics.short_of_copies()
        if self.refuse_short:
            where = origin or "one node"
            raise ErrMaybeApplied(
                f"only {held} of the {self.copies} nodes write_copies asks for hold it after "
                f"{self.wait_ms} ms (is the sync running?): it stands on {where} and may still "
                "be copied, or be lost with that node"
            )
        return held

    async def _holds(self, key: str, extra: str, node: str) -> int:
        """1 if ``node`` has applied the write's origin up to the write, within the wait."""
        try:
            got = await self.upstream._send("GET", f"/v1/kv/{key}", extra, node=node)
        except DtmError:
            return 0
        return 1 if got.status in (200, 404) else 0
