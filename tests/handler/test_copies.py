"""`dtm.handler.copies.CopyWait` over a fake pusher: what is pushed where, and when a write is
acknowledged, short or refused."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from dtm import wire
from dtm.core import sessiontoken
from dtm.core.hlc import pack
from dtm.core.session import contribution
from dtm.errors import ErrMaybeApplied
from dtm.handler.copies import CopyWait
from dtm.handler.metrics import HandlerMetrics
from dtm.handler.push import Pusher
from dtm.handler.upstream import Reply

NODES = ("store1", "store2", "store3")
EPOCH = "0123456789abcdef"
KEY = "u.abc"
ROW = wire.Row(KEY, msgspec.Raw(b'{"text":"x"}'), False, 4, pack(1_790_000_000_000, 1), "store2")
HOLDS = wire.ReplicateResponse(1, 0, 9)
HELD_BACK = wire.ReplicateResponse(0, 0, 9, held_from=4)
NEVER = "never"  # a fake node that does not answer


class FakePusher(Pusher):
    def __init__(self, answers: dict[str, wire.ReplicateResponse | str | None]) -> None:
        super().__init__({})
        self.answers = answers
        self.sent: list[tuple[str, wire.ReplicateRequest]] = []
        self.hanging: list[asyncio.Event] = []

    async def push(
        self, node: str, copy: wire.ReplicateRequest, timeout_s: float
    ) -> wire.ReplicateResponse | None:
        self.sent.append((node, copy))
        answer = self.answers[node]
        if answer == NEVER:
            gone = asyncio.Event()
            self.hanging.append(gone)
            try:
                await asyncio.Event().wait()  # no answer, ever (until cancelled)
            finally:
                gone.set()
        assert not isinstance(answer, str)
        return answer


def the_answer(row: wire.Row = ROW, session: bool = True) -> Reply:
    token = sessiontoken.encode(contribution(row.origin, EPOCH, row.version, row.hlc))
    return Reply(200, wire.encode(row), token if session else None, row.origin)


def waiting(pusher: FakePusher, copies: int = 2, refuse: bool = False) -> CopyWait:
    return CopyWait(pusher, NODES, HandlerMetrics("lb"), copies, 200, refuse)


async def test_the_stored_row_itself_goes_to_every_other_node() -> None:
    pusher = FakePusher({"store1": HOLDS, "store3": HOLDS})
    assert await waiting(pusher, copies=3).held(KEY, the_answer()) == 3
    assert sorted(n for n, _ in pusher.sent) == ["store1", "store3"]
    for _, copy in pusher.sent:
        assert copy == wire.ReplicateRequest("store2", EPOCH, 0, [ROW])


async def test_acknowledged_once_enough_hold_it_while_the_rest_goes_on() -> None:
    pusher = FakePusher({"store1": NEVER, "store3": HOLDS})
    wait = waiting(pusher)
    assert await wait.held(KEY, the_answer()) == 2
    assert wait.metrics.n_short_of_copies == 0
    (hanging,) = pusher.hanging
    assert not hanging.is_set()  # the push to store1 was not cut off
    await wait.close()
    await asyncio.wait_for(hanging.wait(), 1)


async def test_a_copy_held_back_or_unanswered_does_not_count() -> None:
    pusher = FakePusher({"store1": HELD_BACK, "store3": None})
    wait = waiting(pusher)
    assert await wait.held(KEY, the_answer()) == 1  # acknowledged anyway, short
    assert wait.metrics.n_short_of_copies == 1


async def test_a_short_write_is_refused_as_maybe_applied_after_the_wait() -> None:
    pusher = FakePusher({"store1": NEVER, "store3": NEVER})
    wait = waiting(pusher, refuse=True)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(ErrMaybeApplied, match="only 1 of the 2 nodes"):
        await wait.held(KEY, the_answer())
    assert loop.time() - began >= 0.19
    assert wait.metrics.n_short_of_copies == 1
    await wait.close()


async def test_an_answer_that_does_not_name_its_write_is_not_copied() -> None:
    pusher = FakePusher({})
    wait = waiting(pusher)
    assert await wait.held(KEY, the_answer(session=False)) == 1
    other = msgspec.structs.replace(ROW, key="u.other")
    assert await wait.held(KEY, the_answer(other)) == 1
    assert await wait.held(KEY, Reply(200, b"{}", None, "store2")) == 1
    assert pusher.sent == [] and wait.metrics.n_short_of_copies == 3


async def test_one_copy_asks_nothing() -> None:
    pusher = FakePusher({})
    assert await waiting(pusher, copies=1).held(KEY, the_answer()) == 1
    assert pusher.sent == []
