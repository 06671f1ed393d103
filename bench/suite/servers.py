"""Starting what the suite measures: our components (through the test harness), HAProxy, Redis.

Rule: everything listens on 127.0.0.1 on a port that was free a moment ago, its files live in the
run's work folder, and whoever starts a thing stops it in a ``finally`` (`Servers.stop_all`).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
from bench.suite import env

sys.path.insert(0, str(env.ROOT / "tests"))

from harness import (
    AUTH_BY_PORT,
    TEST_USER,
    LocalCluster,
    expected_auth,
    free_port,
    request,
    wait_until,
)

__all__ = [
    "LocalCluster",
    "Servers",
    "auth_headers",
    "fill",
    "free_port",
    "request",
    "task_id",
    "wait_until",
]


def auth_headers(url: str) -> dict[str, str]:
    """The Authorization header the component at ``url`` expects (none for other servers)."""
    parts = urlsplit(url)
    value = expected_auth(parts.port, parts.path or "/")
    return {"Authorization": value} if value else {}


ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
TASK_VALUE = (
    b'{"text":"benchmark task","status":"open",'
    b'"created":"2026-01-01T00:00:00.000Z","updated":"2026-01-01T00:00:00.000Z"}'
)
PUT_BODY = '{"value":' + TASK_VALUE.decode() + "}"


def task_id(i: int) -> str:
    """A valid 12-character task ID for the number ``i`` (so filled rows list as tasks)."""
    out = []
    for _ in range(12):
        out.append(ALPHABET[i % 32])
        i //= 32
    return "".join(reversed(out))


def task_key(i: int) -> str:
    """The key of the test user's task number ``i`` (the handler keeps a user's tasks under
    ``<user>.<id>``)."""
    return f"{TEST_USER}.{task_id(i)}"


_enc = msgspec.json.Encoder()
FILLER_EPOCH = "f111111111111111"  # the made-up peer's epoch (16 hex digits, like a node's)


def fill(
    url: str, start: int, count: int, *, batch: int = 5000, key: Callable[[int], str] = task_key
) -> None:
    """Rows ``start .. start+count-1`` on the node at ``url``, fast: replicated batches from a
    made-up peer ``filler`` (the same call on two nodes gives both the same rows)."""
    base = 1_767_225_600_000 << 16  # 2026-01-01, in the past: never ahead of a node's clock
    done = 0
    while done < count:
        n = min(batch, count - done)
        first = start + done
        rows = [
            {
                "key": key(first + i),
                "value": msgspec.Raw(TASK_VALUE),
                "deleted": False,
                "version": first + i + 1,
                "hlc": base + first + i,
                "origin": "filler",
            }
            for i in range(n)
        ]
        done += n
        body = {
            "source": "filler",
            "epoch": "f111111111111111",
            "source_version": first + n,
            "rows": rows,
        }
        r = request("POST", f"{url}/v1/replicate", _enc.encode(body), timeout=120)
        if r.status != 200:
            raise RuntimeError(f"filling {url} failed: {r}")


def node_status(url: str) -> dict[str, Any]:
    r = request("GET", f"{url}/v1/status")
    if r.status != 200:
        raise RuntimeError(f"{url}/v1/status answered {r}")
    body: dict[str, Any] = r.json()
    return body


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it when the suite dies (no server left holding a port)."""
    import ctypes
    import signal

    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Servers:
    """The clusters and reference servers of one group, stopped together."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.clusters: list[LocalCluster] = []
        self.others: list[subprocess.Popen[bytes]] = []

    def cluster(self, name: str, **kwargs: Any) -> LocalCluster:
        c = LocalCluster(self.workdir / name, **kwargs)
        self.clusters.append(c)
        return c

    def pin(self, c: LocalCluster) -> None:
        """Pin every running component of ``c`` to the server core."""
        for proc in c.procs.values():
            if proc.alive():
                env.pin(proc.pid, env.SERVER_CPU)

    def haproxy(self, c: LocalCluster) -> tuple[str, int]:
        """HAProxy in front of ``c``'s nodes (round robin, keep-alive, one thread); its URL and
        pid."""
        port = free_port()
        servers = "\n".join(
            f"  server {n} 127.0.0.1:{c.ports[n]} check inter 500ms" for n in c.node_names
        )
        cfg = self.workdir / f"haproxy-{port}.cfg"
        cfg.write_text(
            "global\n  maxconn 4096\n  nbthread 1\n"
            "defaults\n  mode http\n  timeout connect 500ms\n  timeout client 30s\n"
            "  timeout server 30s\n  option http-keep-alive\n"
            f"frontend fe\n  bind 127.0.0.1:{port}\n  default_backend nodes\n"
            f"backend nodes\n  balance roundrobin\n{servers}\n"
        )
        argv = env.pinned(["haproxy", "-f", str(cfg)], env.SERVER_CPU)
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        self.others.append(proc)
        AUTH_BY_PORT[port] = c.auth_header  # its clients send the nodes' credential through it
        url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: request("GET", url + "/healthz", timeout=1).status == 200,
            15,
            0.05,
            "haproxy to answer",
        )
        return url, proc.pid

    def redis(self, *, durable: bool) -> int:
        """A Redis server (no persistence, or AOF with fsync on every write); its port."""
        port = free_port()
        folder = self.workdir / f"redis-{port}"
        folder.mkdir(parents=True)
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--dir", str(folder), "--protected-mode", "no", "--daemonize", "no"]
        argv += ["--appendonly", "yes", "--appendfsync", "always"] if durable else []
        argv += ["--appendonly", "no"] if not durable else []
        proc = subprocess.Popen(
            env.pinned(argv, env.SERVER_CPU),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        self.others.append(proc)

        def up() -> bool:
            out = subprocess.run(
                ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True, check=False
            )
            return out.stdout.strip() == "PONG"

        wait_until(up, 15, 0.05, "redis to answer PING")
        return port

    def stop_all(self) -> None:
        for proc in reversed(self.others):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        for c in reversed(self.clusters):
            c.stop_all()
