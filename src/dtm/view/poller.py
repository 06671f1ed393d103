"""The live view's eyes: every ``poll_ms`` it reads each component's status and records events.

Rule: one poll asks every data node's and the sync's ``/v1/status`` (then the sync's
``/v1/conflicts`` when its count moved, and the change feed of a node whose version moved, to
find the rows of its own origin: its clients' writes) at once, each call bounded by a timeout,
and asks supervisord for the processes' states; the snapshot and `model.diff` against the
previous one are kept (at most ``max_events`` events) and handed to every subscriber's bounded
queue. A subscriber that cannot keep up is dropped, never waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp
import msgspec

from dtm.cli.cluster_fmt import plain_reason, stamp_time
from dtm.cluster.layout import RunDir, all_components
from dtm.config import ClusterConfig
from dtm.view import model

log = logging.getLogger("dtm.view")

CALL_TIMEOUT_S = 1.0
QUEUE_SIZE = 512
MAX_BODY = 8 * 1024 * 1024
CONFLICTS_SHOWN = 50
FEED_ROWS = 1000  # rows of a node's feed read per poll to tell its own writes from copies

Message = tuple[str, bytes]  # (SSE event name, JSON data)


class Poller:
    def __init__(
        self,
        cluster: ClusterConfig,
        headers: dict[str, str],
        client_ssl: ssl.SSLContext | None,
        processes: Callable[[], dict[str, str] | None],
        max_events: int,
        now_ms: Callable[[], int],
    ) -> None:
        self.cluster = cluster
        self.headers = headers
        self.client_ssl = client_ssl
        self.processes = processes
        self.now_ms = now_ms
        self.events: deque[model.Event] = deque(maxlen=max_events)
        self.snapshot: model.Snapshot | None = None
        self.subscribers: set[asyncio.Queue[Message | None]] = set()
        self._next_id = 1
        self._conflicts: list[Any] = []
        self._session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------ subscribers

    def subscribe(self) -> asyncio.Queue[Message | None]:
        q: asyncio.Queue[Message | None] = asyncio.Queue(QUEUE_SIZE)
        self.subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Message | None]) -> None:
        self.subscribers.discard(q)

    def _publish(self, name: str, data: bytes) -> None:
        for q in list(self.subscribers):
            try:
                q.put_nowait((name, data))
            except asyncio.QueueFull:  # too slow: drop it (its stream ends, the page reconnects)
                self.subscribers.discard(q)
                with contextlib.suppress(asyncio.QueueFull):
                    q.get_nowait()
                    q.put_nowait(None)

    def record(self, event: model.Event) -> None:
        ev = msgspec.structs.replace(event, id=self._next_id)
        self._next_id += 1
        self.events.append(ev)
        self._publish("event", msgspec.json.encode(ev))

    # ------------------------------------------------------------ polling

    async def run(self, every_s: float) -> None:
        timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
        async with aiohttp.ClientSession(headers=self.headers, timeout=timeout) as session:
            self._session = session
            while True:
                started = time.monotonic()
                try:
                    await self.poll_once()
                except Exception:  # one bad poll must not end the view
                    log.exception("a poll failed")
                await asyncio.sleep(max(0.0, every_s - (time.monotonic() - started)))

    async def _get(self, url: str) -> Any:
        assert self._session is not None
        async with self._session.get(url, ssl=self.client_ssl or True) as resp:
            body = await resp.content.read(MAX_BODY)
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}")
            return msgspec.json.decode(body)

    async def _try(self, url: str) -> tuple[Any, str]:
        try:
            return await self._get(url), ""
        except TimeoutError:
            return None, f"no answer within {CALL_TIMEOUT_S:.0f} s"
        except (aiohttp.ClientError, OSError, RuntimeError, ValueError) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:300]

    async def _writes(self, prev: model.Snapshot | None, n: model.NodeView) -> model.NodeView:
        """``n`` with the rows of its own origin its feed gained since the previous poll."""
        old = next((o for o in prev.nodes if o.name == n.name), None) if prev else None
        if old is None or not (old.reachable and n.reachable) or old.epoch != n.epoch:
            return n
        if n.last_version <= old.last_version:
            return n
        query = f"?since={old.last_version}&limit={FEED_ROWS}"
        page, _ = await self._try(n.url + "/v1/changes" + query)
        if page is None:
            return n
        own = [str(r.get("key", "")) for r in page.get("rows", []) if r.get("origin") == n.name]
        return msgspec.structs.replace(n, writes=len(own), write_keys=own[:3])

    async def poll_once(self) -> None:
        states_task = asyncio.create_task(asyncio.to_thread(self.processes))
        calls = [self._try(n.url + "/v1/status") for n in self.cluster.node]
        calls.append(self._try(self.cluster.sync.url + "/v1/status"))
        answers = await asyncio.gather(*calls)
        states = await states_task
        sync_raw, sync_err = answers[-1]
        prev = self.snapshot
        if sync_raw is not None and (
            prev is None or sync_raw.get("conflicts", 0) != prev.sync.conflicts
        ):
            got, _ = await self._try(self.cluster.sync.url + "/v1/conflicts")
            if got is not None:
                self._conflicts = list(reversed(got.get("conflicts", [])))[:CONFLICTS_SHOWN]
        nodes = [
            _node(n.name, n.url, raw, err, _state(states, n.name))
            for n, (raw, err) in zip(self.cluster.node, answers[:-1], strict=True)
        ]
        nodes = list(await asyncio.gather(*(self._writes(prev, n) for n in nodes)))
        comps = [
            model.ComponentView(name=c.name, kind=c.kind, state=_state(states, c.name))
            for c in all_components(self.cluster)
        ]
        snap = model.Snapshot(
            at_ms=self.now_ms(),
            nodes=nodes,
            sync=_sync(sync_raw, sync_err, _state(states, "sync")),
            components=comps,
            conflicts=self._conflicts,
            levers=states is not None,
        )
        for ev in model.diff(prev, snap):
            self.record(ev)
        changed = prev is None or msgspec.structs.replace(prev, at_ms=0) != msgspec.structs.replace(
            snap, at_ms=0
        )
        self.snapshot = snap
        if changed:
            self._publish("state", msgspec.json.encode(snap))


def _state(states: dict[str, str] | None, name: str) -> str:
    return "" if states is None else states.get(name, "MISSING")


def _node(name: str, url: str, raw: Any, err: str, state: str) -> model.NodeView:
    if raw is None:
        return model.NodeView(name=name, url=url, state=state, reachable=False, error=err)
    offsets = raw.get("offsets") or {}
    far = max(offsets.values(), key=abs, default=0)
    return model.NodeView(
        name=name,
        url=url,
        state=state,
        reachable=True,
        epoch=str(raw.get("epoch", "")),
        last_version=int(raw.get("last_version", 0)),
        live_rows=int(raw.get("live_rows", 0)),
        tombstones=int(raw.get("tombstones", 0)),
        fenced=bool(raw.get("fenced", False)),
        offset_ms=int(far),
    )


def _sync(raw: Any, err: str, state: str) -> model.SyncView:
    if raw is None:
        return model.SyncView(state=state, reachable=False, error=err)
    pairs = [
        model.PairView(
            source=p["source"],
            target=p["target"],
            cursor=p["cursor"],
            source_last_version=p["source_last_version"],
            lag_versions=p["lag_versions"],
            lag_ms=None if p.get("lag_seconds") is None else round(p["lag_seconds"] * 1000),
            rows_sent=p["rows_sent"],
            conflicts=p["conflicts"],
            reachable=p["reachable"],
        )
        for p in raw.get("pairs", [])
    ]
    holds = [
        f"{h['key']} (deleted on {h['origin']} at {stamp_time(int(h['hlc']))}) is kept because "
        + ("; ".join(plain_reason(r) for r in h.get("waiting_for", [])) or "nothing")
        for h in raw.get("purge_holds", [])[:20]
    ]
    return model.SyncView(
        state=state,
        reachable=True,
        mode=str(raw.get("mode", "")),
        pairs=pairs,
        rounds={str(k): int(v) for k, v in (raw.get("rounds") or {}).items()},
        conflicts=int(raw.get("conflicts", 0)),
        awaiting_purge=int(raw.get("tombstones_awaiting_purge", 0)),
        purged=int(raw.get("purged", 0)),
        holds=holds,
    )


def supervisor_states(run: RunDir, python: str) -> Callable[[], dict[str, str] | None]:
    """A function giving each supervised process's state (PAUSED when frozen), or None."""
    import xmlrpc.client

    from dtm.cluster.levers import state_of
    from dtm.cluster.supervisor_client import Supervisor
    from dtm.errors import DtmError

    sup = Supervisor(run, python)

    def states() -> dict[str, str] | None:
        if not run.socket.exists():
            return None
        try:
            return {p.name: state_of(p) for p in sup.processes()}
        except (DtmError, OSError, xmlrpc.client.Error):
            return None

    return states
