"""Hypothesis over raw request bytes straight to a real data node (its lean server, `dtm.site`).

The same valid and mutated streams as the balancer's fuzz, pipelined on one connection and split
at random points. Whatever the bytes: the node answers exactly the requests a reference reading
of the whole stream accepts, in order, plus at most one final refusal that closes the connection;
it never answers 5xx; a PUT it acknowledged holds exactly the body the reference read for it (no
request is ever made of another's bytes); and the node goes on serving.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httptools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_balancer_fuzz import _Reference, send_split, streams
from tests.harness import LocalCluster, request

from dtm.auth import Credential
from dtm.balancer.http1 import RequestHead
from dtm.config import NodeConfig
from dtm.node.app import PUT_OVERHEAD
from dtm.serve import Guard, everything_but_open_paths
from dtm.site import Limits, Routes, Site


class Rig:
    def __init__(self, root: Path) -> None:
        self.c = LocalCluster(root, nodes=1)
        self.c.start_nodes()
        self.credential = Credential((self.c.secret,))
        self.max_body = NodeConfig(name="n", port=1).max_batch_bytes + PUT_OVERHEAD
        limits = Limits(10_000, 64, self.max_body, 60_000)
        # The node's own admission rules, to read the streams by (its routes play no part).
        self.site = Site("node", Routes({}, ()), limits, lambda *_: None)
        self.site.guard = Guard(self.credential, True, everything_but_open_paths)

    def refused(self, head: RequestHead) -> bool:
        return self.site.refusal(head) is not None


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    r = Rig(tmp_path_factory.mktemp("nodefuzz"))
    try:
        yield r
    finally:
        r.c.stop_all()


class _Answers:
    """The status and Connection header of every answer in a byte stream."""

    def __init__(self, data: bytes) -> None:
        self.seen: list[tuple[int, bool]] = []
        self._close = False
        self.parser = httptools.HttpResponseParser(self)
        self.parser.feed_data(data)

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"connection" and value.lower() == b"close":
            self._close = True

    def on_message_complete(self) -> None:
        self.seen.append((self.parser.get_status_code(), self._close))
        self._close = False


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_raw_bytes_never_desync_a_node(rig: Rig, data: st.DataObject) -> None:
    url = rig.c.url("store1")
    for i in range(4):  # the keys the streams write, cleared between examples
        request("DELETE", f"{url}/v1/kv/k{i}")
    auth = rig.c.auth_header.encode()
    stream, sent, mutated = data.draw(streams(auth))
    cuts = sorted(data.draw(st.lists(st.integers(1, max(1, len(stream) - 1)), max_size=4)))
    expected = _Reference(rig.refused, rig.max_body).read(stream)
    if not mutated:
        assert expected == sent
    reply = send_split(rig.c.ports["store1"], stream, cuts)
    answers = _Answers(reply).seen
    assert all(code < 500 for code, _ in answers), reply[:500]
    assert len(expected) <= len(answers) <= len(expected) + 1, (stream, reply[:800])
    if len(answers) > len(expected):  # the refusal that ended the stream
        assert answers[-1][1], reply[-400:]
    for (method, target, body), (code, _) in zip(expected, answers, strict=False):
        if method == "PUT" and code == 200:
            held = request("GET", url + target.decode())
            assert held.status == 200 and held.json()["value"] == json.loads(body)["value"]
    assert request("GET", url + "/healthz").status == 200
