"""Session guarantees (read-your-writes, monotonic reads) over asynchronous replicas.

Rule: a replica serves a token entry (X, epoch e, version v) iff it holds X's feed at epoch e
through v — it is X at epoch e with ``last_version >= v``, or it applied X's feed at epoch e
through ``>= v`` — and a replica at any other epoch of X, older or newer, does not (version 0
requires nothing).

Why not a newer epoch either: epochs are random ids, so a replica cannot tell an older epoch of X
from a newer one; and a replica that moved on to X's next epoch restarted its record of X's feed
(`dtm.core.writes.advance_applied`), so it cannot prove it had received the old epoch's tail. Only
X itself can say that e is gone: the reader then drops the entry (`adopt_new_epochs`) once no
reachable replica still holds X at e through v (`dtm.core.readplan`), since what the old X held and
never copied elsewhere is lost for good. Tokens merge by pointwise maximum.
"""

from __future__ import annotations

from collections.abc import Mapping

from dtm.wire import PeerApplied, SessionToken


def contribution(node: str, epoch: str, version: int, hlc: int) -> SessionToken:
    """What one answer of ``node`` adds to a session: its version, epoch and clock."""
    return SessionToken({node: version}, {node: epoch}, hlc)


def merge_tokens(old: SessionToken, new: SessionToken) -> SessionToken:
    """Pointwise maximum; a node whose epoch changed restarts from the newer answer's entry."""
    versions = dict(old.versions)
    epochs = dict(old.epochs)
    for node, version in new.versions.items():
        epoch = new.epochs.get(node, "")
        if epochs.get(node, epoch) != epoch:
            versions[node] = version
        else:
            versions[node] = max(versions.get(node, 0), version)
        epochs[node] = epoch
    return SessionToken(versions, epochs, max(old.hlc, new.hlc))


def unmet(
    token: SessionToken,
    node: str,
    epoch: str,
    last_version: int,
    applied: Mapping[str, PeerApplied],
) -> list[str]:
    """The token entries this replica does not yet satisfy (empty: it may serve the read)."""
    missing: list[str] = []
    for x, v in token.versions.items():
        e = token.epochs.get(x, "")
        if v <= 0:
            continue
        if x == node:
            ok = epoch == e and last_version >= v
        else:
            seen = applied.get(x)
            ok = seen is not None and seen.epoch == e and seen.version >= v
        if not ok:
            missing.append(f"{x}@{v}")
    return missing


def adopt_new_epochs(token: SessionToken, answer: SessionToken) -> SessionToken:
    """``token`` with each entry that ``answer`` (a node's contribution) shows at another epoch
    replaced by the answer's entry; the token itself if there is none."""
    changed = {
        x
        for x, e in answer.epochs.items()
        if x in token.versions and x in answer.versions and token.epochs.get(x, e) != e
    }
    if not changed:
        return token
    versions = dict(token.versions)
    epochs = dict(token.epochs)
    for x in changed:
        versions[x] = answer.versions[x]
        epochs[x] = answer.epochs[x]
    return SessionToken(versions, epochs, max(token.hlc, answer.hlc))
