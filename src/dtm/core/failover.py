"""Rule: a request surely never sent goes to the next address at once; one sent without an
answer goes there only if repeating it is harmless (a read, or a write idempotent by
construction), else its fate is unknown: ErrMaybeApplied, and it is not sent again.

Both hops with several peers decide by `after_no_answer`: the CLI between request handlers, the
handler between load balancers. "Never sent" means the connection was never made: refused, a
connect timeout, a name that did not resolve, a failed TLS handshake. Once a request's bytes may
have left, only the caller knows whether a second copy is harmless; it says so in ``repeatable``.
"""

from __future__ import annotations

from typing import Literal

Step = Literal["next", "maybe-applied"]


def after_no_answer(*, sent: bool, repeatable: bool) -> Step:
    """What to do with a request that got no answer from one peer."""
    return "next" if not sent or repeatable else "maybe-applied"
