"""`todo cluster inspect <id> [--json]`: one task's row on every data node, and whether they agree.

Rule: it reads each node's change feed (`GET /v1/changes`, tombstones included, each key once at
its latest version; at most MAX_PAGES pages) with the cluster credential and picks the rows whose
key is the ID, or whose task ID (after the user's ``name.``) starts with it; one key must match.
Every node agrees when each holds the same write (stamp and origin); otherwise the newest write
in the total order (stamp, origin) is named with the nodes that lack it. `verdict` is pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from dtm.cli.cluster_fmt import Target, get_json, stamp_time, table, task_value
from dtm.cli.render import visible
from dtm.errors import DtmError, ErrAmbiguousID, ErrNoDataFound, ErrSyntaxInvalidArgs

PAGE = 1000
MAX_PAGES = 200
MIN_PREFIX = 4


def matches(key: str, ref: str) -> bool:
    task_id = key.rsplit(".", 1)[-1]
    return key == ref or task_id.startswith(ref)


def scan(target: Target, name: str, url: str, ref: str) -> dict[str, dict[str, Any]]:
    """The rows of node ``name`` that ``ref`` may mean, by key."""
    found: dict[str, dict[str, Any]] = {}
    since = 0
    for _ in range(MAX_PAGES):
        page = get_json(
            target, url.rstrip("/") + "/v1/changes", f"node {name}", {"since": since, "limit": PAGE}
        )
        rows = page.get("rows", [])
        for row in rows:
            if matches(str(row["key"]), ref):
                found[str(row["key"])] = row
        if not rows:  # a short page may be cut by bytes: only an empty one ends the feed
            break
        since = max(int(r["version"]) for r in rows)
    return found


def verdict(rows: Mapping[str, dict[str, Any] | None]) -> tuple[bool, str]:
    """(every node has the same write, a sentence saying so or who lacks the newest)."""
    have = {n: r for n, r in rows.items() if r is not None}
    if not have:
        return False, "no node holds it"
    newest = max(have.values(), key=lambda r: (int(r["hlc"]), str(r["origin"])))
    mark = (newest["hlc"], newest["origin"])
    behind = sorted(n for n, r in rows.items() if r is None or (r["hlc"], r["origin"]) != mark)
    when = stamp_time(int(newest["hlc"]))
    if not behind:
        return True, f"every node has the same write (made on {newest['origin']} at {when})"
    return False, (
        f"not yet: {', '.join(behind)} lack{'s' if len(behind) == 1 else ''} the newest write "
        f"(made on {newest['origin']} at {when}); the sync copies it on its next poll"
    )


def collect(
    target: Target, ref: str
) -> tuple[str, dict[str, dict[str, Any] | None], dict[str, str]]:
    if not target.nodes:
        raise ErrSyntaxInvalidArgs("cluster inspect needs the cluster config (--config FILE)")
    per_node: dict[str, dict[str, dict[str, Any]]] = {}
    errors: dict[str, str] = {}
    for name, url in target.nodes:
        try:
            per_node[name] = scan(target, name, url, ref)
        except DtmError as err:
            errors[name] = f"{err.name}: {err}"
    keys = sorted({k for found in per_node.values() for k in found})
    if not keys:
        raise ErrNoDataFound(f"no task with ID {ref!r} on any node")
    if len(keys) > 1:
        raise ErrAmbiguousID(f"{ref!r} matches {len(keys)} tasks: {', '.join(keys[:10])}")
    key = keys[0]
    return (
        key,
        {n: per_node[n].get(key) if n in per_node else None for n, _ in target.nodes},
        errors,
    )


def render(key: str, rows: Mapping[str, dict[str, Any] | None], errors: Mapping[str, str]) -> str:
    head = ("node", "version", "written at", "origin", "value")
    out = [head]
    for name, row in rows.items():
        if name in errors:
            out.append((name, "?", "?", "?", f"unreachable: {visible(errors[name])}"))
        elif row is None:
            out.append((name, "-", "-", "-", "(not here)"))
        else:
            value = "deleted (a tombstone)" if row["deleted"] else task_value(row["value"])
            out.append(
                (
                    name,
                    str(row["version"]),
                    stamp_time(int(row["hlc"])),
                    visible(str(row["origin"])),
                    value,
                )
            )
    _, words = verdict({n: r for n, r in rows.items() if n not in errors})
    return "\n".join([f"task {visible(key)}", *table(out, frozenset({1})), words])


def show(target: Target, args: Any, json: bool) -> str:
    ref = str(args.id).strip()
    if len(ref) < MIN_PREFIX:
        raise ErrSyntaxInvalidArgs(f"an ID needs at least {MIN_PREFIX} characters, not {ref!r}")
    key, rows, errors = collect(target, ref)
    if json:
        same, words = verdict({n: r for n, r in rows.items() if n not in errors})
        out = {"key": key, "nodes": rows, "errors": errors, "same": same, "verdict": words}
        return msgspec.json.encode(out).decode()
    return render(key, rows, errors)
