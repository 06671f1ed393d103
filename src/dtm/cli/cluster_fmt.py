"""What the `todo cluster` views share: reaching a cluster, stamps as times, tables, plain words.

Rule: a view reads a cluster through `Target` (the sync's address, the data nodes, the cluster
credential and TLS context, found as dtm.cli.cluster_status documents) with `get_json`; a stamp
is shown as the local wall-clock time of its physical part (with ``+n`` for a logical part); the
sync's reasons are rephrased by `plain_reason`; every remote text passes through `visible`.
"""

from __future__ import annotations

import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from dtm import wire
from dtm.auth import AUTH_HEADER, Credential
from dtm.cli.render import visible
from dtm.errors import ErrSyntaxInvalidArgs, ErrTimeout, ErrUnavailable

LOGICAL_BITS = 16  # dtm.core.hlc.LOGICAL_BITS (not imported: the CLI stays lean)
MAX_ANSWER = 64 * 1024 * 1024


@dataclass(frozen=True)
class Target:
    sync_url: str
    credential: Credential | None
    nodes: list[tuple[str, str]]
    context: ssl.SSLContext | None


def get_json(
    target: Target, url: str, who: str, query: Mapping[str, str | int] | None = None
) -> Any:
    """``GET url`` with the cluster credential, decoded as plain JSON; failures are our errors."""
    if query:
        url += "?" + urllib.parse.urlencode(query)
    req = urllib.request.Request(url)
    if target.credential is not None:
        req.add_header(AUTH_HEADER, target.credential.header_value)
    try:
        with urllib.request.urlopen(req, timeout=5.0, context=target.context) as resp:
            data = resp.read(MAX_ANSWER)
    except urllib.error.HTTPError as exc:
        raise wire.error_from_answer(exc.code, exc.read(64 * 1024), f"{who} at {url}") from None
    except TimeoutError:
        raise ErrTimeout(f"{who} at {url} did not answer within 5s") from None
    except OSError as exc:
        raise ErrUnavailable(f"cannot reach {who} at {url}: {exc}") from None
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError:
        raise ErrUnavailable(f"{who} at {url} answered something that is not JSON") from None


def stamp_time(hlc: int) -> str:
    """A stamp as the local time of its physical part: '2026-12-02 10:00:01.234' (+logical)."""
    ms, logical = hlc >> LOGICAL_BITS, hlc & ((1 << LOGICAL_BITS) - 1)
    return ms_time(ms) + (f" +{logical}" if logical else "")


def ms_time(ms: int) -> str:
    t = time.localtime(ms / 1000)
    return time.strftime("%Y-%m-%d %H:%M:%S", t) + f".{ms % 1000:03d}"


def table(rows: Sequence[Sequence[str]], right: frozenset[int] = frozenset()) -> list[str]:
    """Rows padded into columns (the columns in ``right`` right-aligned), trailing blanks cut."""
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    return out


_NOT_REACHED = re.compile(r"^(\S+): not reached yet$")
_NOT_APPLIED = re.compile(r"^(\S+): has not applied it$")
_FEED = re.compile(r"^(\S+): feed not yet applied up to (\d+) by (.+)$")


def plain_reason(reason: str) -> str:
    """One of the sync's reasons a tombstone is kept, in plain words (unknown ones as they are)."""
    if m := _NOT_REACHED.match(reason):
        return f"the sync has not heard from {m.group(1)} yet"
    if m := _NOT_APPLIED.match(reason):
        return f"{m.group(1)} does not have the delete yet"
    if m := _FEED.match(reason):
        return f"{m.group(3)} has not copied {m.group(1)}'s changes up to version {m.group(2)} yet"
    if reason.startswith("decided:"):
        return (
            "every node has it; the purge waits one call timeout, so that a batch read before "
            "the decision cannot bring the old row back"
        )
    return visible(reason)


def task_value(value: Any) -> str:
    """A stored task value in a few words: its status and text (anything else as JSON)."""
    if isinstance(value, dict) and "text" in value:
        return f"[{visible(str(value.get('status', '?')))}] {visible(str(value['text']))}"
    return visible(msgspec.json.encode(value).decode())


def row_words(row: Mapping[str, Any]) -> str:
    """A row: 'deleted' or its value, then who wrote it when."""
    what = "deleted" if row.get("deleted") else task_value(row.get("value"))
    origin = visible(str(row.get("origin", "?")))
    return f"{what}  (written on {origin} at {stamp_time(int(row.get('hlc', 0)))})"


def check_limit(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ErrSyntaxInvalidArgs(f"--limit needs a positive whole number, not {text!r}")
    return n
