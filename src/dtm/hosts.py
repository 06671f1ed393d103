"""Which listen addresses and ``Host`` values name this machine only: the DNS-rebinding rule.

Rule: a listener on a loopback address answers only requests whose ``Host`` names the loopback
(``localhost``, ``127.0.0.1`` or ``[::1]``, with any port or none); a page that rebinds its own
name to 127.0.0.1 still sends its own name, so it is refused. The aiohttp services and the
balancer both ask these two functions. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
from typing import Final

LOOPBACK_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "[::1]"})


def is_loopback(host: str) -> bool:
    """True if ``host`` (a listen address) is reachable only from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_allowed(value: str | None) -> bool:
    """True if a ``Host`` header names this machine's loopback (any port), or is absent."""
    if value is None:
        return True
    host = value.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[: end + 1], host[end + 1 :]
    else:
        name, colon, port = host.partition(":")
        rest = colon + port
    return name in LOOPBACK_HOSTS and (rest == "" or (rest[:1] == ":" and rest[1:].isdigit()))
