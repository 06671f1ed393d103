"""What every component's ``main()`` does the same way: its log lines and its stop signals.

Config and logging happen only at the edges; this module is that edge's shared part.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys


def configure_logging(component: str) -> None:
    """One line per event on stderr: time, level, component, logger, message."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s {component} %(name)s: %(message)s",
    )


async def until_stopped() -> None:
    """Return once the process gets SIGTERM or SIGINT (on the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
