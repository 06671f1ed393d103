"""Concurrent clients of the task API, each with its own user and session; records a history.

    python -m chaos.workload SPEC.json HISTORY.jsonl

SPEC: {"urls": [handler URL, ...], "users": [[name, token], ...], "seconds": s, "seed": n}. Each
client is one thread and one sequential session (like one person's `todo` commands): it creates
tasks, updates their text and status, deletes, gets and lists them, sending its session token
with every request and merging every answer's token into it. Like `todo` given several URLs, it
keeps to the handler that last answered and, when one gives no answer, goes to the next by the
CLI's own rule (`dtm.core.failover`): a request surely never sent, or a read, is sent there at
once; a write that may have left is recorded as unanswered and not sent again. Every text it
writes is unique, so the checker can tell which write a value came from. The history is one
JSON line per operation, flushed as it completes (a killed workload still leaves its history).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chaos.history import FAIL, INFO, OK, Op, op_to_json
from dtm.core.failover import after_no_answer

TIMEOUT_S = 15.0  # longer than the handler's own 10 s call timeout
CONNECT_TIMEOUT_S = 1.0  # a handler that does not take the connection by then is passed over
DEFINITE = {400, 401, 413}  # refused before anything was written


def merge(token: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The session rule's pointwise maximum (a node at a new epoch restarts its entry)."""
    versions = dict(token.get("versions", {}))
    epochs = dict(token.get("epochs", {}))
    for node, v in new.get("versions", {}).items():
        e = new.get("epochs", {}).get(node, "")
        versions[node] = v if epochs.get(node, e) != e else max(versions.get(node, 0), v)
        epochs[node] = e
    return {
        "versions": versions,
        "epochs": epochs,
        "hlc": max(token.get("hlc", 0), new.get("hlc", 0)),
    }


class Client:
    def __init__(self, n: int, user: str, token: str, urls: list[str], seed: int, out: Any) -> None:
        self.n, self.user, self.bearer = n, user, f"Bearer {token}"
        self.handlers = [(p.hostname or "", p.port or 80) for p in map(urlsplit, urls)]
        self.current = n % len(self.handlers)  # clients spread over the handlers
        self.rng = random.Random(seed * 1000 + n)
        self.out = out
        self.session: dict[str, Any] = {}
        self.known: dict[str, bool] = {}  # task id -> maybe deleted
        self.unsure_creates: set[str] = set()  # texts of creates with no answer
        self.seq = 0
        self.words = 0

    def _http(self, method: str, path: str, body: Any) -> tuple[int, Any, dict[str, Any] | None]:
        """One request, to each handler in turn while `after_no_answer` says "next"."""
        for tried in range(len(self.handlers)):
            host, port = self.handlers[self.current]
            sent = False
            try:
                conn = http.client.HTTPConnection(host, port, timeout=CONNECT_TIMEOUT_S)
                conn.connect()
                sent = True
                return self._exchange(conn, method, path, body)
            except (OSError, http.client.HTTPException):
                self.current = (self.current + 1) % len(self.handlers)
                last = tried == len(self.handlers) - 1
                if last or after_no_answer(sent=sent, repeatable=method == "GET") != "next":
                    raise
        raise AssertionError("unreachable")

    def _exchange(
        self, conn: http.client.HTTPConnection, method: str, path: str, body: Any
    ) -> tuple[int, Any, dict[str, Any] | None]:
        conn.sock.settimeout(TIMEOUT_S)
        try:
            headers = {"Authorization": self.bearer, "X-Dtm-Session": json.dumps(self.session)}
            data = None if body is None else json.dumps(body).encode()
            if data is not None:
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            tok = resp.getheader("X-Dtm-Session")
            token = json.loads(tok) if tok else None
            return resp.status, json.loads(raw) if raw else None, token
        finally:
            conn.close()

    def _text(self) -> str:
        self.words += 1
        return f"c{self.n} w{self.words}"

    def step(self) -> None:
        r = self.rng.random()
        ids = sorted(self.known)
        if not ids or r < 0.25:
            text = self._text()
            self._op("create", "POST", "/v1/tasks", None, {"text": text, "status": "open"})
            return
        tid = self.rng.choice(ids)
        if r < 0.50:
            which = self.rng.choice(("text", "status", "both"))
            value: dict[str, str] = {}
            if which in ("text", "both"):
                value["text"] = self._text()
            if which in ("status", "both"):
                value["status"] = self.rng.choice(("open", "complete"))
            self._op("update", "PATCH", f"/v1/tasks/{tid}", tid, value)
        elif r < 0.60:
            self._op("delete", "DELETE", f"/v1/tasks/{tid}", tid, None)
        elif r < 0.80:
            self._op("get", "GET", f"/v1/tasks/{tid}", tid, None)
        else:
            self._op("list", "GET", "/v1/tasks", None, None)

    def _op(self, f: str, method: str, path: str, tid: str | None, value: Any) -> None:
        self.seq += 1
        body: Any = None
        if f == "create":
            body = {"text": value["text"]}
        elif f == "update":
            body = value
        inv = time.monotonic()
        status, answer, token, error = 0, None, None, ""
        try:
            status, answer, token = self._http(method, path, body)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            error = type(exc).__name__
        end = time.monotonic()
        if token:
            self.session = merge(self.session, token)
        if status and not 200 <= status < 300 and isinstance(answer, dict):
            error = str(answer.get("error", ""))
        kind, result = self._judge(f, status, error, answer)
        if f == "create" and kind == OK and isinstance(answer, dict):
            tid = str(answer["id"])
        self._learn(f, kind, tid, value, result, error)
        op = Op(
            self.n, self.seq, f, inv, end, kind, self.user, tid, value, result, status, error, token
        )
        self.out(op)

    def _judge(self, f: str, status: int, error: str, answer: Any) -> tuple[str, Any]:
        def st(t: Any) -> dict[str, str]:
            return {"text": t["text"], "status": t["status"]}

        if 200 <= status < 300:
            if f == "list":  # a TaskPage: each task is [id, text, status, created, ...]
                items = answer.get("tasks", [])
                return OK, {t[0]: {"text": t[1], "status": t[2]} for t in items}
            return OK, None if f == "delete" else st(answer)
        if f in ("get", "list"):
            return (OK, None) if f == "get" and error == "ErrNoDataFound" else (FAIL, None)
        if status in DEFINITE or (f == "update" and error in ("ErrNoDataFound", "ErrNotCaughtUp")):
            return FAIL, None  # an update's read failed: it wrote nothing
        return INFO, None

    def _learn(
        self, f: str, kind: str, tid: str | None, value: Any, result: Any, error: str
    ) -> None:
        if f == "create":
            if kind == OK and tid:
                self.known[tid] = False
            elif kind == INFO:
                self.unsure_creates.add(value["text"])
        elif f == "delete" and tid:
            if kind == OK or error == "ErrNoDataFound":
                self.known.pop(tid, None)
            elif kind == INFO:
                self.known[tid] = True
        elif f == "get" and kind == OK and result is None and tid:
            self.known.pop(tid, None)
        elif f == "list" and kind == OK:
            for i, v in result.items():  # adopt a task whose create went unanswered
                if i not in self.known and v["text"] in self.unsure_creates:
                    self.unsure_creates.discard(v["text"])
                    self.known[i] = False


def run(spec: dict[str, Any], out_path: Path) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    lock = threading.Lock()
    f = out_path.open("a", encoding="utf-8")

    def write(op: Op) -> None:
        with lock:
            f.write(op_to_json(op) + "\n")
            f.flush()

    deadline = time.monotonic() + float(spec["seconds"])
    think = float(spec.get("think_s", 0.02))

    parent = os.getppid()

    def loop(c: Client) -> None:  # ends with the harness, even one killed by SIGKILL
        while not stop.is_set() and time.monotonic() < deadline and os.getppid() == parent:
            c.step()
            stop.wait(c.rng.uniform(0, 2 * think))

    clients = [
        Client(i, u, t, list(spec["urls"]), int(spec["seed"]), write)
        for i, (u, t) in enumerate(spec["users"])
    ]
    threads = [threading.Thread(target=loop, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    f.close()
    return 0


if __name__ == "__main__":
    sys.exit(run(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2])))
