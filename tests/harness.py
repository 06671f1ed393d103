"""Real processes on ephemeral loopback ports, for end-to-end tests.

`LocalCluster` writes a cluster config with free ports in a temporary folder and starts any
component as a real `dtm` process (``python -m dtm.run``), waiting for its ``/healthz`` with a
deadline. Every process it starts is stopped by `stop_all()`, which the `cluster` fixture in
conftest.py calls even when a test fails; each process also gets ``DTM_DIE_WITH_PARENT`` so it
dies with the test runner.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from dtm.core.users import token_hash

T = TypeVar("T")

START_TIMEOUT = 15.0

# The Authorization header each test cluster's components expect, by loopback port: `request`
# (and every aiohttp session of the tests) sends it unless told otherwise (``auth=False``, or an
# explicit header). A handler port takes its test user's token, except on its internal paths,
# which take the cluster credential like every other component.
AUTH_BY_PORT: dict[int, str] = {}
USER_AUTH_BY_PORT: dict[int, str] = {}
# The TLS client context `request` uses for an https URL, by port (a test cluster with tls=True
# registers one trusting its CA and showing its operator certificate).
TLS_BY_PORT: dict[int, ssl.SSLContext] = {}
HANDLER_INTERNAL_PATHS = frozenset({"/metrics", "/v1/status"})
TEST_USER = "tester"  # every test cluster's one handler user (its tasks' keys start "tester.")


def expected_auth(port: int | None, path: str) -> str | None:
    """The Authorization value a test cluster's component at ``port`` wants for ``path``."""
    if port is None:
        return None
    user = USER_AUTH_BY_PORT.get(port)
    if user is not None and path not in HANDLER_INTERNAL_PATHS:
        return user
    return AUTH_BY_PORT.get(port)


def _client_auth_middleware() -> Any:
    """An aiohttp client middleware doing for test sessions what `request` does: the credential
    to a test cluster's ports (unless the test set one), and a bytes body sent as JSON (aiohttp
    labels it application/octet-stream, which our servers refuse)."""
    import aiohttp

    async def mw(req: aiohttp.ClientRequest, handler: Any) -> aiohttp.ClientResponse:
        expected = expected_auth(req.url.port, req.url.path)
        if expected is not None and "Authorization" not in req.headers:
            req.headers["Authorization"] = expected
        if req.headers.get("Content-Type") == "application/octet-stream":
            req.headers["Content-Type"] = "application/json"
        resp: aiohttp.ClientResponse = await handler(req)
        return resp

    return mw


def install_client_auth() -> None:
    """Make every aiohttp ClientSession of the tests carry `_client_auth_middleware` (once)."""
    import aiohttp

    init = aiohttp.ClientSession.__init__
    if getattr(init, "_dtm_auth", False):
        return
    mw = _client_auth_middleware()

    def patched(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> None:
        kwargs["middlewares"] = (*kwargs.get("middlewares", ()), mw)
        init(self, *args, **kwargs)

    patched._dtm_auth = True  # type: ignore[attr-defined]
    aiohttp.ClientSession.__init__ = patched  # type: ignore[method-assign]


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1, and that this test process has not
    handed out before (a cluster whose node is restarting must not find its port taken by the
    next cluster)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def processes_naming(marker: Path) -> list[int]:
    """Live (non-zombie) processes, other than this one, whose command line names ``marker``."""
    needle = str(marker).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except (OSError, IndexError):
            continue
        if needle in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the peer sends until it closes (a reset ends it too)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes to a loopback port; what comes back until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        return read_until_closed(s)


def wait_until(
    pred: Callable[[], T], timeout: float = 10.0, interval: float = 0.01, what: str = "condition"
) -> T:
    """Poll ``pred`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = pred()
            if value:
                return value
        except Exception as exc:  # keep polling; report the last failure at the deadline
            last_exc = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}") from last_exc
        time.sleep(interval)


install_client_auth()


def register_cluster(config_path: Path) -> None:
    """Teach `request` the credential of a cluster someone else made (e.g. `dtm cluster up`)."""
    from dtm.auth import load_credential
    from dtm.config import load_config

    cfg = load_config(config_path)
    cred = load_credential(cfg.secret_path, {})
    if cred is None:
        return
    for n in cfg.node:
        AUTH_BY_PORT[n.port] = cred.header_value
    for section in (cfg.balancer, cfg.sync, cfg.handler):
        AUTH_BY_PORT[section.port] = cred.header_value


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.body[:200]!r}>"


def request(
    method: str,
    url: str,
    body: bytes | str | dict[str, Any] | list[Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    auth: bool = True,
    context: ssl.SSLContext | None = None,
) -> Response:
    """One HTTP request with the standard library (no pooling: each call is a new connection).

    With ``auth`` (the default), a request to a test cluster's component carries the credential
    that component expects (see `AUTH_BY_PORT`). An https URL is spoken with ``context``, else
    the one its port registered (`TLS_BY_PORT`), else the system's defaults."""
    parts = urlsplit(url)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        ctx = context or TLS_BY_PORT.get(parts.port or 443)
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    data: bytes | None
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = body
    hdrs = dict(headers or {})
    expected = expected_auth(parts.port, parts.path or "/")
    if auth and expected is not None and not any(k.lower() == "authorization" for k in hdrs):
        hdrs["Authorization"] = expected
    if data is not None:
        hdrs.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path or "/", body=data, headers=hdrs)
        resp = conn.getresponse()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


class Proc:
    """One component process and its log file."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.popen = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.popen.pid, sig)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout: float = 5.0) -> None:
        """SIGCONT (in case it was stopped), SIGTERM, then SIGKILL after ``timeout``."""
        if self.alive():
            try:
                os.kill(self.popen.pid, signal.SIGCONT)
                self.popen.terminate()
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)
            except ProcessLookupError:
                pass
        self._log.close()

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.alive():
            self.popen.kill()
            self.popen.wait(10)
        self._log.close()


class LocalCluster:
    """A cluster config on free loopback ports, and the processes started from it."""

    def __init__(
        self,
        root: Path,
        nodes: int = 2,
        sections: dict[str, dict[str, Any]] | None = None,
        node_options: dict[str, dict[str, Any]] | None = None,
        node_hosts: dict[str, str] | None = None,
        node_netns: dict[str, str] | None = None,
        tls: bool = False,
        client_certs: bool = False,
    ) -> None:
        """``node_hosts``/``node_netns`` place a node on another address, inside a network
        namespace the test made (it is started with ``ip netns exec``). ``tls`` writes a [tls]
        section and makes its certificates with `dtm cluster certs` (``client_certs`` too)."""
        self.root = root
        self.tls = tls
        self.client_certs = client_certs
        self.node_hosts = node_hosts or {}
        self.node_netns = node_netns or {}
        self.root.mkdir(parents=True, exist_ok=True)
        self.node_names = [f"store{i}" for i in range(1, nodes + 1)]
        self.ports: dict[str, int] = {
            comp: free_port() for comp in (*self.node_names, "balancer", "handler", "sync")
        }
        self.sections = sections or {}
        self.node_options = node_options or {}
        self.config_path = root / "cluster.toml"
        self.secret_path = root / "secret"
        self.secret = "test-secret-" + secrets.token_urlsafe(24)
        fd = os.open(self.secret_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.secret + "\n")
        # The handler's clients: one test user, whose token `request` sends to the handler.
        self.user_token = "dtmu_test-" + secrets.token_urlsafe(32)
        self.users_path = root / "users.json"
        users = {"users": {TEST_USER: {"token_sha256": token_hash(self.user_token)}}}
        fd = os.open(self.users_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(users, f)
        for comp, port in self.ports.items():
            AUTH_BY_PORT[port] = self.auth_header
            if comp == "handler":
                USER_AUTH_BY_PORT[port] = self.user_auth
        self.write_config()
        if tls:
            self.make_certs()
        self.procs: dict[str, Proc] = {}
        self._all: list[Proc] = []

    # ------------------------------------------------------------ config

    def write_config(self) -> None:
        lines = ["[cluster]", 'data_dir = "data"', 'log_dir = "logs"', 'secret_file = "secret"']
        lines += [f"{k} = {_toml(v)}" for k, v in self.sections.get("cluster", {}).items()]
        lines.append("")
        for name in self.node_names:
            host = self.node_hosts.get(name, "127.0.0.1")
            lines += ["[[node]]", f'name = "{name}"', f'host = "{host}"']
            lines += [f"port = {self.ports[name]}"]
            lines += [f"{k} = {_toml(v)}" for k, v in self.node_options.get(name, {}).items()]
            lines.append("")
        for comp in ("balancer", "handler", "sync"):
            lines += [f"[{comp}]", 'host = "127.0.0.1"', f"port = {self.ports[comp]}"]
            lines += [f"{k} = {_toml(v)}" for k, v in self.sections.get(comp, {}).items()]
            lines.append("")
        if self.tls:
            lines += ["[tls]", 'ca_file = "certs/ca.pem"', 'cert_dir = "certs"']
            lines += [f"client_certs = {_toml(self.client_certs)}", ""]
        self.config_path.write_text("\n".join(lines))

    @property
    def ca_path(self) -> Path:
        return self.root / "certs" / "ca.pem"

    def make_certs(self) -> None:
        """`dtm cluster certs` on this config; `request` then speaks TLS to every port."""
        argv = [sys.executable, "-m", "dtm.run", "cluster", "certs", "--config"]
        subprocess.run([*argv, str(self.config_path)], check=True, capture_output=True)
        for port in self.ports.values():
            TLS_BY_PORT[port] = self.client_context()

    def client_context(self, cert: str | None = "operator") -> ssl.SSLContext:
        """A TLS client trusting this cluster's CA, showing ``cert``'s certificate (or none)."""
        ctx = ssl.create_default_context(cafile=str(self.ca_path))
        if cert is not None:
            d = self.root / "certs"
            ctx.load_cert_chain(d / f"{cert}.pem", d / f"{cert}.key")
        return ctx

    @property
    def auth_header(self) -> str:
        """The Authorization value every internal endpoint of this cluster expects."""
        return f"Bearer {self.secret}"

    @property
    def user_auth(self) -> str:
        """The Authorization value of the test user ("tester") at the handler."""
        return f"Bearer {self.user_token}"

    def url(self, component: str) -> str:
        host = self.node_hosts.get(component, "127.0.0.1")
        return f"{'https' if self.tls else 'http'}://{host}:{self.ports[component]}"

    @property
    def node_urls(self) -> list[str]:
        return [self.url(n) for n in self.node_names]

    def db_path(self, node: str) -> Path:
        return self.root / "data" / f"{node}.db"

    # ------------------------------------------------------------ processes

    def start(self, component: str, *args: str, wait: bool = True) -> Proc:
        """Start ``component`` (a node name like ``store1``, or balancer/handler/sync)."""
        key = component
        if component in self.node_names:
            argv = ["node", "--config", str(self.config_path), "--name", component]
        else:
            argv = [component, "--config", str(self.config_path)]
        argv = [sys.executable, "-m", "dtm.run", *argv, *args]
        if "--port" in args[:-1]:  # another listener of this cluster: it wants the credential too
            extra = int(args[args.index("--port") + 1])
            AUTH_BY_PORT[extra] = self.auth_header
            if component == "handler":
                USER_AUTH_BY_PORT[extra] = self.user_auth
        if component in self.node_netns:
            argv = ["ip", "netns", "exec", self.node_netns[component], *argv]
        env = dict(os.environ, DTM_DIE_WITH_PARENT="1", PYTHONUNBUFFERED="1")
        (self.root / "logs").mkdir(exist_ok=True)
        proc = Proc(key, argv, self.root / "logs" / f"{key}.test.log", env)
        self.procs[key] = proc
        self._all.append(proc)
        if wait:
            self.wait_healthy(key)
        return proc

    def start_another(self, component: str, key: str, *args: str, wait: bool = True) -> Proc:
        """Start one more ``component`` process (e.g. a second handler) named ``key``, on a free
        port of its own passed as ``--port``; ``url(key)`` then reaches it."""
        self.ports.setdefault(key, free_port())
        AUTH_BY_PORT[self.ports[key]] = self.auth_header
        if self.tls:
            TLS_BY_PORT[self.ports[key]] = self.client_context()
        if component == "handler":
            USER_AUTH_BY_PORT[self.ports[key]] = self.user_auth
        argv = [component, "--config", str(self.config_path), "--port", str(self.ports[key])]
        argv = [sys.executable, "-m", "dtm.run", *argv, *args]
        env = dict(os.environ, DTM_DIE_WITH_PARENT="1", PYTHONUNBUFFERED="1")
        (self.root / "logs").mkdir(exist_ok=True)
        proc = Proc(key, argv, self.root / "logs" / f"{key}.test.log", env)
        self.procs[key] = proc
        self._all.append(proc)
        if wait:
            self.wait_healthy(key)
        return proc

    def start_nodes(self) -> None:
        for n in self.node_names:
            self.start(n, wait=False)
        for n in self.node_names:
            self.wait_healthy(n)

    def wait_healthy(self, component: str, timeout: float = START_TIMEOUT) -> None:
        proc = self.procs[component]
        url = self.url(component) + "/healthz"

        def healthy() -> bool:
            if not proc.alive():
                raise AssertionError(
                    f"{component} exited with {proc.popen.returncode}:\n{proc.log_tail()}"
                )
            try:
                return request("GET", url, timeout=1.0).status == 200
            except OSError:
                return False

        try:
            wait_until(healthy, timeout, 0.02, f"{component} to answer /healthz")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- log of {component} ---\n{proc.log_tail()}") from None

    def restart(self, component: str, *args: str) -> Proc:
        old = self.procs.get(component)
        if old is not None:
            old.stop()
        return self.start(component, *args)

    def stop_all(self) -> None:
        for proc in reversed(self._all):
            try:
                proc.stop()
            except Exception:
                proc.kill()


def _toml(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))


@contextmanager
def running(
    root: Path, components: Sequence[str] = ("balancer", "handler"), **kwargs: Any
) -> Iterator[LocalCluster]:
    """A LocalCluster with its data nodes and ``components`` started; always stopped after."""
    c = LocalCluster(root, **kwargs)
    try:
        c.start_nodes()
        for comp in components:
            c.start(comp)
        yield c
    finally:
        c.stop_all()
