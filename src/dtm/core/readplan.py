"""How the request handler reads for a session: which nodes to ask, with what, and when to stop.

Rule: read once through the balancer with the whole token; if no single node covers it, read
each entry (X, e, v) from X itself, pinned, with that entry alone, then from every other node
in turn, and merge the answers that cover every entry (`dtm.core.readmerge`); an entry that no
node covers is dropped for X's new epoch only when X itself answers at another epoch and every
node answered (`adopt`); else wait once for replication, then fail naming the missing writes.

`next_read(state, answer)` is pure: the shell sends the reads of each `Send` (concurrently),
feeds every answer back, and acts on what comes out: `Send` again (a retry, after an adopt, or
the pinned reads of a merge), `Done` (one answer to serve, or several to merge), or `Fail`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from dtm.core.session import adopt_new_epochs
from dtm.errors import ErrNotCaughtUp, ErrUnavailable
from dtm.wire import SessionToken

P = TypeVar("P")

RESET_HINT = "`todo session reset` starts a new session without them"


@dataclass(frozen=True, slots=True)
class Read:
    """One request: to ``node`` (None: any, through the balancer) carrying ``token``."""

    node: str | None
    token: SessionToken
    wait: bool  # True: the node may wait for replication (X-Dtm-Wait: catch_up_wait_ms)


@dataclass(frozen=True, slots=True)
class Served(Generic[P]):
    """A node served ``read`` (200, or 404 for a key it does not hold live)."""

    read: Read
    node: str
    contribution: SessionToken
    payload: P


@dataclass(frozen=True, slots=True)
class Behind:
    """A node answered 409 ErrNotCaughtUp: it does not cover ``read.token``."""

    read: Read
    node: str
    contribution: SessionToken


@dataclass(frozen=True, slots=True)
class Unreachable:
    """No answer from a node (connection refused, timeout, 503 from the balancer)."""

    read: Read
    why: str
    error: ErrUnavailable


Answer = Served[P] | Behind | Unreachable


@dataclass(frozen=True, slots=True)
class Send:
    """Send these reads; ``token`` is the session's token from now on (changed by an adopt)."""

    reads: tuple[Read, ...]
    token: SessionToken


@dataclass(frozen=True, slots=True)
class Done(Generic[P]):
    """Serve this: one answer as is, or several merged by the write order."""

    served: tuple[Served[P], ...]


@dataclass(frozen=True, slots=True)
class Fail:
    """Refuse the read; ``missing`` names the entries no reachable node covers (the shell may
    learn the sync's state and `explain` them again)."""

    error: ErrNotCaughtUp | ErrUnavailable
    missing: tuple[str, ...] = ()


Step = Send | Done[P] | Fail


@dataclass(frozen=True, slots=True)
class ReadState(Generic[P]):
    """Where one session read stands."""

    token: SessionToken
    nodes: tuple[str, ...]  # every data node of the cluster
    can_wait: bool  # the handler has a catch-up wait to offer
    sync: str = "unknown"  # what is known of the sync process: "running", "stopped", "unknown"
    merging: bool = False
    waited: bool = False
    adopts_left: int = 0
    pending: tuple[Read, ...] = ()
    covered: Mapping[str, Served[P]] = field(default_factory=dict)  # entry node -> its answer
    tried: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # entry -> nodes asked
    behind: Mapping[str, SessionToken] = field(default_factory=dict)  # node -> its contribution
    down: Mapping[str, str] = field(default_factory=dict)  # node -> why it did not answer


def entries(token: SessionToken) -> list[str]:
    """The nodes whose entry in ``token`` requires something (version > 0)."""
    return sorted(x for x, v in token.versions.items() if v > 0)


def only(token: SessionToken, x: str) -> SessionToken:
    """The token reduced to its entry for ``x`` (and its clock)."""
    epochs = {x: token.epochs[x]} if x in token.epochs else {}
    return SessionToken({x: token.versions[x]}, epochs, token.hlc)


def start(
    token: SessionToken, nodes: Sequence[str], can_wait: bool, sync: str = "unknown"
) -> tuple[ReadState[P], Send]:
    """The first read: one request through the balancer with the whole token."""
    first = Read(None, token, False)
    state: ReadState[P] = ReadState(
        token, tuple(nodes), can_wait, sync, adopts_left=len(token.versions), pending=(first,)
    )
    return state, Send((first,), token)


def _candidates(state: ReadState[P], x: str) -> list[str]:
    """Who may cover entry ``x``: X itself first, then every other node."""
    return ([x] if x in state.nodes else []) + [n for n in state.nodes if n != x]


def _next_for(state: ReadState[P], x: str) -> Read | None:
    """The next pinned read for entry ``x``, or None when every candidate was asked."""
    asked = state.tried.get(x, ())
    for n in _candidates(state, x):
        if n not in asked:
            return Read(n, only(state.token, x), state.waited)
    return None


def _merge_round(state: ReadState[P]) -> tuple[ReadState[P], Step[P]]:
    """Ask X itself for each entry not covered yet."""
    reads: list[Read] = []
    tried = dict(state.tried)
    for x in entries(state.token):
        if x in state.covered:
            continue
        read = _next_for(replace(state, tried=tried), x)
        if read is not None and read.node is not None:
            reads.append(read)
            tried[x] = (*tried.get(x, ()), read.node)
    state = replace(state, merging=True, tried=tried, pending=tuple(reads))
    if not reads:
        return _settle(state)
    return state, Send(tuple(reads), state.token)


def next_read(state: ReadState[P], answer: Answer[P]) -> tuple[ReadState[P], Step[P] | None]:
    """Take one answer to a pending read; None: wait for the others still pending."""
    pending = list(state.pending)
    if answer.read in pending:
        pending.remove(answer.read)
    state = replace(state, pending=tuple(pending))
    if not state.merging:
        if isinstance(answer, Served):
            return state, Done((answer,))
        if isinstance(answer, Unreachable):
            return state, Fail(answer.error)
        state = replace(state, behind={**state.behind, answer.node: answer.contribution})
        return _merge_round(state)
    entry = next(iter(answer.read.token.versions))
    if isinstance(answer, Served) and _moved_on(state.token, answer):
        # A node that was wiped since the token named it does not serve this session until its
        # old entry is settled: its contribution would replace that entry unseen.
        answer = Behind(answer.read, answer.node, answer.contribution)
    if isinstance(answer, Served):
        state = replace(state, covered={**state.covered, entry: answer})
    else:
        if isinstance(answer, Behind):
            state = replace(state, behind={**state.behind, answer.node: answer.contribution})
        else:
            assert answer.read.node is not None
            state = replace(state, down={**state.down, answer.read.node: answer.why})
        if entry not in state.covered:
            read = _next_for(state, entry)
            if read is not None and read.node is not None:
                tried = {**state.tried, entry: (*state.tried.get(entry, ()), read.node)}
                state = replace(state, tried=tried, pending=(*state.pending, read))
                return state, Send((read,), state.token)
    if state.pending:
        return state, None
    return _settle(state)


def _moved_on(token: SessionToken, served: Served[P]) -> bool:
    """The serving node names itself at another epoch than the token's entry for it."""
    n = served.node
    return token.versions.get(n, 0) > 0 and served.contribution.epochs.get(n) != token.epochs.get(n)


def _settle(state: ReadState[P]) -> tuple[ReadState[P], Step[P]]:
    """Every pinned read is answered: serve the merge, adopt, wait once, or fail."""
    missing = [x for x in entries(state.token) if x not in state.covered]
    if not missing:
        return state, Done(tuple(state.covered.values()))
    gone = [x for x in missing if _wiped(state, x) is not None]
    if gone and state.adopts_left > 0:
        token = state.token
        for x in gone:
            new = _wiped(state, x)
            assert new is not None
            token = adopt_new_epochs(token, new)
        return start_again(state, token)
    if state.can_wait and not state.waited:
        state = replace(state, waited=True, tried={x: () for x in missing})
        return _merge_round(state)
    return state, Fail(ErrNotCaughtUp(explain(state, missing)), tuple(missing))


def start_again(state: ReadState[P], token: SessionToken) -> tuple[ReadState[P], Step[P]]:
    """After an adopt: the whole read again with the new token (an adopt is never undone, and
    each entry is adopted at most once per read)."""
    first = Read(None, token, state.waited)
    fresh: ReadState[P] = ReadState(
        token,
        state.nodes,
        state.can_wait,
        state.sync,
        waited=state.waited,
        adopts_left=state.adopts_left - 1,
        pending=(first,),
    )
    return fresh, Send((first,), token)


def _wiped(state: ReadState[P], x: str) -> SessionToken | None:
    """X's own answer at another epoch than the token names, if every node answered for x:
    what X's old epoch held and no reachable node covers is gone for good."""
    seen = state.behind.get(x)
    if seen is None or seen.epochs.get(x, "") == state.token.epochs.get(x, ""):
        return None
    if any(n in state.down for n in state.tried.get(x, ())):
        return None
    return seen


def explain(state: ReadState[P], missing: Sequence[str]) -> str:
    """Why the read is refused and the way out: whose writes are missing, where they are."""
    parts = []
    for x in missing:
        v = state.token.versions[x]
        if x in state.down:
            where = f"{x} is unreachable ({state.down[x]})"
        elif x in state.behind:
            where = f"{x} no longer holds them (it answers at epoch {_epoch(state, x)})"
        elif x not in state.nodes:
            where = f"{x} is not a node of this cluster"
        else:
            where = f"{x} did not answer"
        others = [n for n in state.tried.get(x, ()) if n != x]
        copied = (
            f"; {', '.join(others)} {'has' if len(others) == 1 else 'have'} not applied them"
            if others
            else ""
        )
        parts.append(f"this session's writes on {x} (through version {v}): {where}{copied}")
    sync = {"running": "the sync is running", "stopped": "the sync is not running"}.get(
        state.sync, "the sync's state is unknown"
    )
    return (
        f"no reachable data node holds {'; '.join(parts)}; {sync}. Try again once {_nodes(missing)}"
        f" {'is' if len(missing) == 1 else 'are'} back or replicated, or {RESET_HINT}"
    )


def _epoch(state: ReadState[P], x: str) -> str:
    return state.behind[x].epochs.get(x, "?")


def _nodes(names: Sequence[str]) -> str:
    return ", ".join(names)
