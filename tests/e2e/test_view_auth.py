"""The live view's trust boundary: the page is public, everything else needs a session that only
the cluster credential gets, and a lever needs the session, a JSON body and X-Dtm-View."""

from __future__ import annotations

import http.client
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.harness import LocalCluster, Proc, free_port, request, wait_until


@pytest.fixture
def view(
    cluster: Callable[..., LocalCluster], tmp_path: Path
) -> Iterator[tuple[LocalCluster, str]]:
    c = cluster()
    c.start_nodes()
    c.start("sync")
    port = free_port()
    with c.config_path.open("a") as f:
        f.write(f'\n[view]\nhost = "127.0.0.1"\nport = {port}\npoll_ms = 100\n')
    argv = [sys.executable, "-m", "dtm.run", "view", "--config", str(c.config_path)]
    env = dict(os.environ, DTM_DIE_WITH_PARENT="1")
    proc = Proc("view", argv, tmp_path / "view.log", env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: request("GET", url + "/healthz").status == 200, 15, 0.05, "the view")
        yield c, url
    finally:
        proc.stop()
    assert "WARNING" not in proc.log_tail(200) and "ERROR" not in proc.log_tail(200)


def login(url: str, header: str | None) -> tuple[int, str]:
    got = request("POST", url + "/login", headers={"Authorization": header} if header else {})
    return got.status, got.headers.get("set-cookie", "")


def test_only_the_cluster_credential_opens_a_session(view: tuple[LocalCluster, str]) -> None:
    c, url = view
    page = request("GET", url + "/")
    assert page.status == 200 and c.secret.encode() not in page.body
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert request("GET", url + "/static/app.js").status == 200
    assert request("GET", url + "/static/../app.py").status == 404
    for path in ("/v1/state", "/v1/events"):
        refused = request("GET", url + path)
        assert refused.status == 401 and refused.json()["error"] == "ErrUnauthorized"
    assert login(url, None)[0] == 401
    assert login(url, "Bearer not-the-secret-at-all-but-long-enough")[0] == 401
    status, cookie = login(url, c.auth_header)
    assert status == 200 and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert c.secret not in cookie
    session = {"Cookie": cookie.split(";")[0]}
    forged = {"Cookie": "dtm_view=" + "A" * 43}
    assert request("GET", url + "/v1/state", headers=forged).status == 401

    state = wait_until(
        lambda: (r := request("GET", url + "/v1/state", headers=session)).status == 200 and r,
        10, 0.05, "the first poll",
    )  # fmt: skip
    body = state.json()
    assert [n["name"] for n in body["nodes"]] == ["store1", "store2"]
    assert body["levers"] is False and body["sync"]["reachable"] is True

    conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=10)
    try:
        conn.request("GET", "/v1/events", headers=session)
        resp = conn.getresponse()
        assert resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream"
        assert resp.readline() == b"event: hello\n"
        assert resp.readline().startswith(b"data: {")
    finally:
        conn.close()


def test_a_lever_needs_the_session_the_header_and_a_good_body(
    view: tuple[LocalCluster, str],
) -> None:
    c, url = view
    _, cookie = login(url, c.auth_header)
    session = {"Cookie": cookie.split(";")[0]}
    body = {"lever": "pause", "component": "store1"}
    assert request("POST", url + "/v1/lever", body, headers={"X-Dtm-View": "1"}).status == 401
    no_header = request("POST", url + "/v1/lever", body, headers=session)
    assert no_header.status == 400 and "X-Dtm-View" in no_header.json()["message"]
    both = {**session, "X-Dtm-View": "1"}
    form = {**both, "Content-Type": "application/x-www-form-urlencoded"}
    as_form = request("POST", url + "/v1/lever", "lever=pause", headers=form)
    assert as_form.status == 415
    for bad in ({"lever": "rm", "component": "store1"}, {"lever": "wipe", "component": "sync"},
                {"lever": "stop", "component": "view"}):  # fmt: skip
        got = request("POST", url + "/v1/lever", bad, headers=both)
        assert got.status == 400, (bad, got)
    # no supervisord runs this cluster: the lever says so, and nothing was paused
    got = request("POST", url + "/v1/lever", body, headers=both)
    assert got.status == 503 and "not running" in got.json()["message"], got
    assert c.procs["store1"].alive()
