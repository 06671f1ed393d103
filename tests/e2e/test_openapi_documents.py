"""Both OpenAPI documents: valid OpenAPI 3.1, carrying the wire types' constraints, and the
node's served at GET /openapi.json without a credential."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from openapi_spec_validator import validate as validate_spec
from tests.harness import LocalCluster, request

from dtm import wire
from dtm.handler.openapi import build_document as handler_document
from dtm.node.openapi import build_document as node_document
from dtm.node.params import MAX_LIMIT


@pytest.mark.parametrize("build", [node_document, handler_document])
def test_the_document_is_valid_openapi(build: Callable[[str], dict[str, Any]]) -> None:
    doc = build("http://127.0.0.1:1")
    validate_spec(doc)
    assert doc["openapi"] == "3.1.0"


def test_the_node_document_carries_the_wire_constraints() -> None:
    doc = node_document("http://127.0.0.1:1")
    schemas = doc["components"]["schemas"]
    row = schemas["Row"]["properties"]
    assert row["hlc"] == {"type": "integer", "minimum": 0, "maximum": wire.MAX_INT} | {
        "description": "an HLC stamp"
    }
    assert (
        row["key"]["pattern"] == wire.Key.__metadata__[0].pattern and row["key"]["maxLength"] == 128
    )
    assert row["origin"]["pattern"] == wire.NODE_NAME_PATTERN
    assert schemas["ChangesPage"]["properties"]["rows"]["maxItems"] == MAX_LIMIT
    assert schemas["ReplicateRequest"]["properties"]["epoch"]["minLength"] == wire.EPOCH_CHARS
    assert doc["components"]["securitySchemes"]["cluster"]["scheme"] == "bearer"
    assert doc["security"] == [{"cluster": []}]
    assert doc["paths"]["/healthz"]["get"]["security"] == []


def test_the_handler_document_carries_the_task_constraints_and_the_user_token() -> None:
    doc = handler_document("http://127.0.0.1:1")
    task = doc["components"]["schemas"]["Task"]["properties"]
    assert task["id"]["pattern"].startswith("^[0123456789abcdefghjkmnpqrstvwxyz]{12}")
    assert task["text"]["maxLength"] == 1000 and task["created"]["maxLength"] == 24
    assert doc["paths"]["/v1/tasks"]["post"]["security"] == [{"user": []}]
    assert "401" in doc["paths"]["/v1/tasks/{ref}"]["delete"]["responses"]
    assert "security" not in doc["paths"]["/healthz"]["get"]


def test_a_node_serves_its_document_without_a_credential(
    cluster: Callable[..., LocalCluster],
) -> None:
    c = cluster(nodes=1)
    c.start("store1")
    r = request("GET", c.url("store1") + "/openapi.json", auth=False)
    assert r.status == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    validate_spec(doc)
    assert doc == node_document(c.url("store1"))
