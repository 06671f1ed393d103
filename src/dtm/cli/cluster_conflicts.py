"""`todo cluster conflicts [--limit N] [--json]`: the sync's conflict log, newest first, in words.

Rule: it reads the sync's `GET /v1/conflicts` (found and authenticated as `todo cluster status`
is) and shows, for each conflict, the key, the winning and the losing write (value, origin, stamp
as a time), the node whose apply decided it and what was lost; fields it does not know (a newer
sync's) are shown as ``name: value`` lines, so a richer log renders without a change here.
`render` is pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from dtm import wire
from dtm.cli.cluster_fmt import Target, check_limit, get_json, ms_time, row_words, stamp_time
from dtm.cli.render import visible

KNOWN = frozenset({"seq", "key", "winner", "loser", "node", "at_ms"})
DEFAULT_LIMIT = 20


def fetch(target: Target) -> dict[str, Any]:
    data = get_json(target, target.sync_url.rstrip("/") + "/v1/conflicts", "the sync process")
    if not isinstance(data, dict) or not isinstance(data.get("conflicts"), list):
        raise wire.error_from_answer(502, b"", "the sync process (its /v1/conflicts)")
    for entry in data["conflicts"]:  # the fields this view relies on must be what wire says
        core = {k: v for k, v in entry.items() if k in KNOWN} if isinstance(entry, dict) else {}
        wire.decode(msgspec.json.encode(core), wire.ConflictEntry, what="a conflict entry")
    return data


def newest(data: Mapping[str, Any], limit: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = list(data["conflicts"])
    return entries[::-1][:limit]


def lost(entry: Mapping[str, Any]) -> str:
    """What the conflict threw away, in one sentence."""
    loser, winner = entry["loser"], entry["winner"]
    who = visible(str(loser["origin"]))
    if loser["deleted"] and not winner["deleted"]:
        return f"the delete made on {who} was undone: the task is back"
    if winner["deleted"] and not loser["deleted"]:
        return f"the change made on {who} was lost: the task stays deleted"
    if loser["deleted"]:
        return f"a second delete, made on {who}: nothing was lost"
    return f"the write made on {who} was overwritten"


def render(data: Mapping[str, Any], limit: int) -> str:
    total = int(data.get("total", len(data["conflicts"])))
    entries = newest(data, limit)
    if not entries:
        return "no conflicts so far (two nodes changing one key between two polls make one)"
    kept = len(data["conflicts"])
    lines = [f"{total} conflicts recorded; the newest {len(entries)} of the {kept} kept:"]
    for e in entries:
        w, lo = e["winner"], e["loser"]
        lines += [
            "",
            f"{visible(str(e['key']))}   decided by {visible(str(e['node']))}'s apply at "
            f"{ms_time(int(e['at_ms']))}",
            f"  winner: {row_words(w)}",
            f"  loser:  {row_words(lo)}",
            f"  why:    the later stamp wins ({stamp_time(int(w['hlc']))} on "
            f"{visible(str(w['origin']))} is after {stamp_time(int(lo['hlc']))})"
            if w["hlc"] != lo["hlc"]
            else "  why:    equal stamps: the greater origin name wins",
            f"  lost:   {lost(e)}",
        ]
        for k in sorted(set(e) - KNOWN):
            lines.append(f"  {visible(k)}: {visible(msgspec.json.encode(e[k]).decode())}")
    return "\n".join(lines)


def show(target: Target, args: Any, json: bool) -> str:
    limit = check_limit(str(args.limit))
    data = fetch(target)
    if json:
        out = {"total": data.get("total"), "conflicts": newest(data, limit)}
        return msgspec.json.encode(out).decode()
    return render(data, limit)
