"""How many nodes hold a write before the handler acknowledges it (``[handler] write_copies``).

Rule: once the node that took a write answered with the row it stored, the handler pushes that
very row to every other node itself, in parallel (`dtm.core.copyplan`: never re-stamped, merged by
the target's last-writer-wins rule, claiming nothing of the first node's feed; `dtm.handler.push`,
straight to the nodes, not through the balancer), and acknowledges the write once ``write_copies``
nodes hold it — or after ``copy_wait_ms`` with fewer, counted in
``dtm_handler_writes_short_of_copies``: with ``copy_shortfall = "acknowledge"`` (the default) the
write is acknowledged anyway (it stands, only less protected: availability first); with
``"refuse"`` it is answered ErrMaybeApplied (it stands on one node and the sync may still copy
it, or it is lost with that node: durability first, and writes fail while fewer than
``write_copies`` nodes can be reached from the handler).

With the default of 1 the sync copies every write after it is acknowledged, so a node that loses
its disk (a wipe) in the replication lag after an acknowledgement loses those writes; with 2 an
acknowledged write survives the loss of any one node, whether or not the sync runs. The price is
one more round trip, to the nearest other node, on every write. Pushes still under way when the
write is acknowledged go on in the background, each bounded by the wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from dtm import wire
from dtm.core import copyplan
from dtm.errors import DtmError, ErrMaybeApplied
from dtm.handler.metrics import HandlerMetrics
from dtm.handler.push import Pusher
from dtm.handler.session import contribution_of
from dtm.handler.upstream import Reply

log = logging.getLogger(__name__)


class CopyWait:
    """Pushes a write's copies, and waits until enough nodes hold it (or the wait runs out)."""

    def __init__(
        self,
        pusher: Pusher,
        nodes: Sequence[str],
        metrics: HandlerMetrics,
        copies: int,
        wait_ms: int,
        refuse_short: bool = False,
    ) -> None:
        self.pusher = pusher
        self.nodes = tuple(nodes)
        self.metrics = metrics
        self.copies = copies
        self.wait_ms = wait_ms
        self.refuse_short = refuse_short
        self._background: set[asyncio.Future[wire.ReplicateResponse | None]] = set()

    async def held(self, key: str, reply: Reply) -> int:
        """How many nodes hold the write ``reply`` acknowledged (at least the one that took it),
        once ``copies`` do or the wait ran out (ErrMaybeApplied then, if short ones are refused)."""
        if self.copies <= 1:
            return 1
        copy = _copy(key, reply)
        if copy is None:
            return self._short(1, reply.node)
        wait_s = self.wait_ms / 1000
        pushes = [
            asyncio.ensure_future(self.pusher.push(node, copy, wait_s))
            for node in copyplan.targets(self.nodes, copy.source)
        ]
        held = 1
        try:
            for done in asyncio.as_completed(pushes, timeout=wait_s):
                try:
                    answer = await done
                except TimeoutError:
                    break
                if answer is not None and copyplan.holds(answer):
                    held += 1
                if held >= self.copies:
                    return held
        finally:
            self._let_finish(pushes)
        return self._short(held, copy.source)

    def _let_finish(self, pushes: Sequence[asyncio.Future[wire.ReplicateResponse | None]]) -> None:
        """Pushes still under way go on (each ends within the wait): one more copy each, and a
        connection that is not cut in the middle of a request."""
        for push in pushes:
            if not push.done():
                self._background.add(push)
                push.add_done_callback(self._finished)

    def _finished(self, push: asyncio.Future[wire.ReplicateResponse | None]) -> None:
        self._background.discard(push)
        if not push.cancelled() and (exc := push.exception()) is not None:
            log.error("pushing a copy of a write failed: %r", exc)

    async def close(self) -> None:
        """Stop the pushes still under way (the handler is stopping)."""
        for push in list(self._background):
            push.cancel()
        self._background.clear()

    def _short(self, held: int, origin: str | None) -> int:
        self.metrics.short_of_copies()
        if self.refuse_short:
            where = origin or "one node"
            raise ErrMaybeApplied(
                f"only {held} of the {self.copies} nodes write_copies asks for hold it after "
                f"{self.wait_ms} ms (are the other nodes down, or cut off from this handler?): "
                f"it stands on {where} and may still be copied, or be lost with that node"
            )
        return held


def _copy(key: str, reply: Reply) -> wire.ReplicateRequest | None:
    """The copy of the write ``reply`` (a node's put or delete answer) says was stored."""
    try:
        row = wire.decode(reply.body, wire.Row, what="write answer")
    except DtmError as exc:
        log.warning("cannot copy the write of %r: %s", key, exc.message)
        return None
    return copyplan.pushable(key, row, contribution_of(reply.session))
