"""Fuzzing both APIs with schemathesis, from the OpenAPI documents the running processes serve,
with every check: no 5xx, every answer's status, content type, headers and body as documented.

Bounded: `EXAMPLES` per operation, against one real node, balancer and handler on ephemeral ports.
"""

from __future__ import annotations

import copy
import json
import time
import warnings
from collections import Counter
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from tests.harness import LocalCluster, expected_auth, request

from dtm import wire
from dtm.node import params

EXAMPLES = 25  # per operation
WAIT_CAP_MS = 200  # long-polls and session waits are valid up to 60 s / 10 s: cut them short
ANSWERS: Counter[tuple[str, int]] = Counter()  # (component, status) of every fuzzed answer


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One node, balancer and handler for the module; the node answered no 500 at the end."""
    c = LocalCluster(Path(tmp_path_factory.mktemp("fuzz")), nodes=1)
    try:
        c.start_nodes()
        c.start("balancer")
        c.start("handler")
        yield c
        print(f"\nschemathesis answers (component, status): {sorted(ANSWERS.items())}")
        metrics = request("GET", c.url("store1") + "/metrics").body.decode()
        assert 'status="5' not in metrics
    finally:
        c.stop_all()


def _headers(port: int, path: str) -> dict[str, str]:
    auth = expected_auth(port, path)
    return {"Authorization": auth} if auth else {}


def _cap(container: MutableMapping[str, Any] | None, name: str, most: int, valid: int) -> None:
    """Lower a wait over ``most`` to it, unless it is over ``valid`` (the documented bound): a
    negative case must stay invalid (it is answered at once)."""
    value = None if container is None else container.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and most < value <= valid:
        container[name] = most  # type: ignore[index]
    elif isinstance(value, str) and value.isdigit() and most < int(value) <= valid:
        container[name] = str(most)  # type: ignore[index]


def _now_stamp() -> int:
    return time.time_ns() // 1_000_000 << 16


def _integral(value: Any) -> Any:
    """JSON Schema's "integer" admits 5.0; msgspec (rightly strict) refuses it: send 5."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def _bounded(case: schemathesis.Case) -> None:
    """Keep a case quick, and a valid case valid where the rule spans more than the schema says.

    Waits are capped. In a valid case: an X-Dtm-Deadline in the future (one in the past is
    answered 504 ErrTimeout); X-Dtm-Node naming the cluster's node; stamps (X-Dtm-Hlc, a
    session's hlc, replicated rows' hlc) not ahead of now (a stamp near 2**63 poisons the
    node's clock: reported, owned by the clock rules); a digest bucket below ``buckets``;
    integral numbers as integers."""
    _cap(case.query, "wait", WAIT_CAP_MS, params.MAX_LONGPOLL_MS)
    _cap(case.headers, "X-Dtm-Wait", WAIT_CAP_MS, params.MAX_SESSION_WAIT_MS)
    if case.meta is None or case.meta.generation.mode != "positive":
        return
    now = _now_stamp()
    headers = case.headers if case.headers is not None else {}
    if "X-Dtm-Deadline" in headers:
        headers["X-Dtm-Deadline"] = str(time.time_ns() // 1_000_000 + 60_000)
    if "X-Dtm-Node" in headers:  # a node this cluster has (the schema says: any node name)
        headers["X-Dtm-Node"] = "store1"
    _cap(headers, "X-Dtm-Hlc", now, wire.MAX_INT)
    session = headers.get("X-Dtm-Session")
    if isinstance(session, str):
        try:
            session = json.loads(session)
        except ValueError:
            session = None
    if isinstance(session, dict):
        # The handler also wants every epoch to name a node the versions name.
        versions = session.get("versions") if isinstance(session.get("versions"), dict) else {}
        epochs = session.get("epochs") if isinstance(session.get("epochs"), dict) else {}
        session = session | {"epochs": {k: v for k, v in epochs.items() if k in versions}}
        if isinstance(session.get("hlc"), int):
            session["hlc"] = min(session["hlc"], now)
        headers["X-Dtm-Session"] = json.dumps(session)
    body = case.body
    if isinstance(body, dict):
        body = _integral(body)
        for row in body.get("rows", []) if isinstance(body.get("rows"), list) else []:
            if isinstance(row, dict) and isinstance(row.get("hlc"), int):
                row["hlc"] = min(row["hlc"], now)
        case.body = body
    path = case.path_parameters
    if path and "bucket" in path:
        buckets = int(str((case.query or {}).get("buckets", 256)))
        path["bucket"] = min(int(str(path["bucket"])), buckets - 1)


def _call(case: schemathesis.Case, cluster: LocalCluster, component: str) -> None:
    _bounded(case)
    url = cluster.url(component)
    headers = _headers(cluster.ports[component], case.path)
    try:
        resp = case.call_and_validate(base_url=url, headers=headers, timeout=15)
    except Exception:
        ANSWERS[(component, -1)] += 1
        raise
    ANSWERS[(component, resp.status_code)] += 1


def _load(url: str, probe: str) -> schemathesis.schemas.BaseSchema:
    """The document served at ``url``; its security requirements are fuzzed only once the
    component enforces them (a request without a credential to ``probe`` is 401)."""
    doc: dict[str, Any] = request("GET", url + "/openapi.json", auth=False).json()
    if request("GET", url + probe, auth=False).status != 401:
        warnings.warn(f"{url} does not enforce its credential yet: not fuzzing it", stacklevel=2)
        doc = copy.deepcopy(doc)
        doc.pop("security", None)
        for item in doc["paths"].values():
            for op in item.values():
                if isinstance(op, dict):
                    op.pop("security", None)
    schema = schemathesis.openapi.from_dict(doc)
    # No made-up extra parameters: HTTP lets a request carry any other header, so an unknown one
    # is no error. (Unknown body fields and query parameters are refused: tests/wire and
    # test_node_api pin that.)
    schema.config.generation.update(allow_extra_parameters=False)
    # 413 is a right answer both ways: to an invalid body, and to a valid one over a byte cap
    # (max_value_bytes, max_batch_bytes, the handler's 16 KiB) that a schema cannot state.
    checks = schema.config.checks
    for check in (checks.negative_data_rejection, checks.positive_data_acceptance):
        check.expected_statuses = [*check.expected_statuses, "413"]
    return schema


@pytest.fixture(scope="module")
def node_api(fuzzed: LocalCluster) -> schemathesis.schemas.BaseSchema:
    return _load(fuzzed.url("store1"), "/v1/status")


@pytest.fixture(scope="module")
def handler_api(fuzzed: LocalCluster) -> schemathesis.schemas.BaseSchema:
    return _load(fuzzed.url("handler"), "/v1/tasks")


@pytest.fixture(autouse=True)
def _nodeid(request: pytest.FixtureRequest) -> None:
    """schemathesis' lazy loader (4.32) reads ``node._nodeid``, which pytest 9 no longer has."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


node_schema = schemathesis.pytest.from_fixture("node_api")
handler_schema = schemathesis.pytest.from_fixture("handler_api")

_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@node_schema.parametrize()
@_SETTINGS
def test_the_node_api_answers_as_documented(fuzzed: LocalCluster, case: schemathesis.Case) -> None:
    _call(case, fuzzed, "store1")


@handler_schema.parametrize()
@_SETTINGS
def test_the_handler_api_answers_as_documented(
    fuzzed: LocalCluster, case: schemathesis.Case
) -> None:
    _call(case, fuzzed, "handler")
