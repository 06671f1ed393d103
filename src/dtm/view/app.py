"""The live view's HTTP side: the page, the login, the event stream and the lever buttons.

Rule: the page and its scripts hold no secret and are served to anyone; ``POST /login`` takes the
cluster credential (``Authorization: Bearer <secret>``, checked by the edge's guard like every
internal endpoint) and answers a random session cookie (HttpOnly, SameSite=Strict; the secret is
never stored in the browser); every other path needs that cookie, and a lever also the header
``X-Dtm-View: 1`` and a JSON body, which no other site's page can send without the browser
asking first. Sessions, subscribers and lever calls are bounded.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec
from aiohttp import web

from dtm import wire
from dtm.cluster.layout import RunDir, all_components
from dtm.config import ClusterConfig
from dtm.errors import ErrSyntaxInvalidArgs, ErrUnauthorized, ErrUnavailable
from dtm.httpkit import error_middleware, json_response
from dtm.view import model
from dtm.view.poller import Poller

STATIC = Path(__file__).parent / "static"
COOKIE = "dtm_view"
SESSION_S = 12 * 3600
MAX_SESSIONS = 64
MAX_BODY = 4096
HEARTBEAT_S = 15.0
PAGES = {"/": "index.html"}
FILES = {"app.js": "text/javascript", "draw.js": "text/javascript", "style.css": "text/css"}
ONE_COMPONENT = frozenset({"stop", "start", "restart", "pause", "resume"})
NODE_ONLY = frozenset({"wipe", "skew"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def needs_credential(path: str) -> bool:
    """Only the login checks the cluster credential itself; the rest checks the session."""
    return path == "/login"


class Sessions:
    """Random session ids, each valid for SESSION_S; the oldest forgotten beyond MAX_SESSIONS."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.now = now
        self.ids: OrderedDict[str, float] = OrderedDict()

    def new(self) -> str:
        sid = secrets.token_urlsafe(32)
        self.ids[sid] = self.now() + SESSION_S
        while len(self.ids) > MAX_SESSIONS:
            self.ids.popitem(last=False)
        return sid

    def valid(self, sid: str | None) -> bool:
        if not sid:
            return False
        until = self.ids.get(sid)
        if until is None or until < self.now():
            self.ids.pop(sid, None)
            return False
        return True


def make_app(
    cluster: ClusterConfig, poller: Poller, run: RunDir, max_clients: int
) -> web.Application:
    sessions = Sessions()
    lever_lock = asyncio.Lock()
    nodes = {n.name for n in cluster.node}
    components = {c.name for c in all_components(cluster)} - {"view"}

    @web.middleware
    async def session_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        open_path = request.path in PAGES or request.path.startswith("/static/")
        if open_path or request.path in ("/healthz", "/login"):
            return await handler(request)
        if not sessions.valid(request.cookies.get(COOKIE)):
            raise ErrUnauthorized("log in first: open the view with the cluster secret")
        return await handler(request)

    async def page(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / PAGES[request.path], headers=_page_headers())

    async def static(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in FILES:
            raise web.HTTPNotFound()
        headers = {"Content-Type": FILES[name], **_page_headers()}
        return web.FileResponse(STATIC / name, headers=headers)

    async def healthz(request: web.Request) -> web.Response:
        view = cluster.view
        where = f"{view.host}:{view.port}" if view is not None else ""
        return json_response(wire.Health("ok", "view", where, int(time.time() * 1000)))

    async def login(request: web.Request) -> web.Response:
        resp = json_response(model.LeverAnswer(message="logged in"))
        resp.set_cookie(
            COOKIE,
            sessions.new(),
            max_age=SESSION_S,
            httponly=True,
            samesite="Strict",
            secure=cluster.view is not None and cluster.view.tls,
            path="/",
        )
        return resp

    async def state(request: web.Request) -> web.Response:
        if poller.snapshot is None:
            raise ErrUnavailable("the view has not polled the cluster yet")
        return json_response(poller.snapshot)

    async def events(request: web.Request) -> web.StreamResponse:
        if len(poller.subscribers) >= max_clients:
            raise ErrUnavailable(f"the view already serves {max_clients} pages")
        q = poller.subscribe()
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await resp.prepare(request)
        try:
            hello = {"state": poller.snapshot, "events": list(poller.events)}
            await resp.write(_sse("hello", msgspec.json.encode(hello)))
            while True:
                try:
                    item = await asyncio.wait_for(q.get(), HEARTBEAT_S)
                except TimeoutError:
                    await resp.write(b": still here\n\n")
                    continue
                if item is None:  # dropped: it fell behind
                    break
                await resp.write(_sse(*item))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            poller.unsubscribe(q)
        return resp

    async def lever(request: web.Request) -> web.Response:
        if request.headers.get("X-Dtm-View") != "1":
            raise ErrSyntaxInvalidArgs("a lever needs the header X-Dtm-View: 1")
        req = wire.decode(await request.read(), model.LeverRequest, limit=MAX_BODY, what="lever")
        allowed = nodes if req.lever in NODE_ONLY else components
        if req.component not in allowed:
            raise ErrSyntaxInvalidArgs(
                f"{req.lever} works on {', '.join(sorted(allowed))}, not {req.component!r}"
            )
        if lever_lock.locked():
            raise ErrUnavailable("another lever is being pulled: wait for it")
        async with lever_lock:
            said = await asyncio.to_thread(_pull, run, req)
        text = " ".join(said)
        poller.record(
            model.Event(
                at_ms=int(time.time() * 1000), kind="lever", text=text[:2000], src=req.component
            )
        )
        return json_response(model.LeverAnswer(message=text[:2000]))

    app = web.Application(
        middlewares=[error_middleware("live view", lambda *_: None), session_guard],
        client_max_size=MAX_BODY,
    )
    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/login", login)
    app.router.add_get("/v1/state", state)
    app.router.add_get("/v1/events", events)
    app.router.add_post("/v1/lever", lever)
    return app


def _pull(run: RunDir, req: model.LeverRequest) -> list[str]:
    """Pull one lever (blocking: it waits for the component); what it said."""
    from dtm.cluster import levers

    said: list[str] = []
    python = sys.executable
    fns: dict[str, Callable[..., int]] = {
        "stop": levers.stop,
        "start": levers.start,
        "restart": levers.restart,
        "pause": levers.pause,
        "resume": levers.resume,
        "wipe": levers.wipe,
    }
    try:
        if req.lever == "skew":
            levers.skew(run, python, req.component, req.offset, say=said.append)
        else:
            fns[req.lever](run, python, req.component, say=said.append)
    except OSError as exc:
        raise ErrUnavailable(f"{req.lever} {req.component} failed: {exc}") from None
    return said


def _sse(name: str, data: bytes) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + data.replace(b"\n", b"") + b"\n\n"


def _page_headers() -> dict[str, str]:
    return {
        "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
