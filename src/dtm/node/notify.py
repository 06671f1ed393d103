"""Wake requests that wait for this node's state to change.

Rule: every committed write (local or replicated) calls `Changes.fire()`, which releases every
waiter at once; a waiter re-checks its own condition and waits again until its deadline. No
polling loop: an idle waiter is one parked future and costs no CPU.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Changes:
    """A generation-based broadcast: each `fire()` completes the current event and starts anew."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._closing = False
        self.waiters = 0

    def fire(self) -> None:
        """Something changed: release everyone waiting now."""
        event, self._event = self._event, asyncio.Event()
        event.set()

    def close(self) -> None:
        """Shutting down: release every waiter and make later waits return at once."""
        self._closing = True
        self._event.set()

    async def wait_for(self, ready: Callable[[], bool], timeout_ms: int) -> bool:
        """Wait until ``ready()`` is true or ``timeout_ms`` elapses; return the last ``ready()``."""
        if ready():
            return True
        if timeout_ms <= 0 or self._closing:
            return False
        deadline = time.monotonic() + timeout_ms / 1000
        self.waiters += 1
        try:
            while True:
                event = self._event
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closing:
                    return ready()
                try:
                    async with asyncio.timeout(remaining):
                        await event.wait()
                except TimeoutError:
                    return ready()
                if ready():
                    return True
        finally:
            self.waiters -= 1
