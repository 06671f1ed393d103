"""The OpenAPI 3.1 document of a data node's API, served at ``GET /openapi.json``.

Rule: the schemas are generated from the wire structs the node really decodes and encodes, and
the query and header ranges from the same `dtm.node.params` ranges the node checks
(msgspec.json.schema_components); only paths, statuses and descriptions are written here.
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec

from dtm import wire
from dtm.core.digest import DEFAULT_BUCKETS, MAX_BUCKETS
from dtm.node import params

JSON = "application/json"
Doc = dict[str, Any]
CLUSTER = "cluster"  # the name of the security scheme: the cluster credential

_STRUCTS = (
    wire.Row,
    wire.PutBody,
    wire.RowPage,
    wire.ChangesPage,
    wire.ReplicateRequest,
    wire.ReplicateResponse,
    wire.PurgeRequest,
    wire.PurgeResponse,
    wire.Digest,
    wire.BucketRows,
    wire.NodeStatus,
    wire.Health,
    wire.ErrorBody,
    wire.SessionToken,
)

_ERRORS = {
    "400": "ErrSyntaxInvalidArgs: a malformed key, body, query or header; the message names the "
    "field (e.g. `$.rows[0].hlc`)",
    "401": "ErrUnauthorized: no valid cluster credential",
    "404": "ErrNoDataFound: no such key (or it is deleted), or no such path",
    "409": "ErrNotCaughtUp: this replica has not caught up with the session token in time",
    "413": "ErrPayloadTooLarge: the body or the value is over its cap",
    "503": "ErrUnavailable (ErrClockSkew): the node cannot take this write now",
    "504": "ErrTimeout: the write arrived after its X-Dtm-Deadline; not applied",
}


def _ref(name: str) -> Doc:
    return {"$ref": f"#/components/schemas/{name}"}


def _int(rng: params.IntRange, what: str) -> Doc:
    return {
        "type": "integer",
        "minimum": rng.low,
        "maximum": rng.high,
        "default": rng.default,
        "description": what,
    }


def _query(name: str, schema: Doc) -> Doc:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _header(name: str, schema: Doc, what: str) -> Doc:
    return {"name": name, "in": "header", "required": False, "description": what, "schema": schema}


_SESSION_ANSWER: Doc = {
    wire.SESSION_HEADER: {
        "description": "This node's contribution to the session (JSON SessionToken).",
        "schema": {"type": "string"},
    }
}


def _answers(schema: str, what: str, errors: tuple[str, ...], session: bool = False) -> Doc:
    headers = {"headers": _SESSION_ANSWER} if session else {}
    out: Doc = {
        "200": {"description": what, **headers, "content": {JSON: {"schema": _ref(schema)}}}
    }
    for s in ("400", "401", *errors):
        out[s] = {
            "description": _ERRORS[s],
            **headers,
            "content": {JSON: {"schema": _ref("ErrorBody")}},
        }
    return out


def _scan_answers() -> Doc:
    """A scan's answers: a live-row page carries its ETag, and a caller offering the current
    one (If-None-Match) is answered 304 with no body (dtm.core.pagetag)."""
    out = _answers("RowPage", "A page of rows.", ("409",), session=True)
    tag = {
        "ETag": {
            "description": "The page's validator (live rows only).",
            "schema": {"type": "string"},
        }
    }
    out["200"]["headers"] = {**out["200"]["headers"], **tag}
    out["304"] = {
        "description": "The caller's copy (the tag it offered) is still this page.",
        "headers": {**_SESSION_ANSWER, **tag},
    }
    return out


def _replicate_answers(errors: tuple[str, ...]) -> Doc:
    """A replicate's answers: also 409 when the batch was planned for another epoch of this
    node (it was wiped since the sync last read it): nothing is applied, the feed is read anew."""
    out = _answers("ReplicateResponse", "What was applied.", (*errors, "409"))
    out["409"] = {
        **out["409"],
        "description": "ErrNotCaughtUp: the batch names another target_epoch than this node's; "
        "nothing was applied",
    }
    return out


def _op(op_id: str, summary: str, responses: Doc, **more: Any) -> Doc:
    return {"operationId": op_id, "summary": summary, "responses": responses, **more}


def _body(schema: str) -> Doc:
    return {"required": True, "content": {JSON: {"schema": _ref(schema)}}}


def build_document(server_url: str) -> Doc:
    """The whole document, for a node answering at ``server_url``."""
    _, schemas = msgspec.json.schema_components(
        _STRUCTS, ref_template="#/components/schemas/{name}"
    )
    schemas = copy.deepcopy(schemas)
    # The one rule across two fields (node.app._check_row): a tombstone iff the value is null.
    schemas["Row"]["oneOf"] = [
        {"properties": {"deleted": {"const": False}, "value": {"not": {"type": "null"}}}},
        {"properties": {"deleted": {"const": True}, "value": {"type": "null"}}},
    ]
    schemas["PutBody"]["properties"]["value"] = {
        "not": {"type": "null"},
        "description": "Any JSON value but null (DELETE removes a key).",
    }
    key = copy.deepcopy(schemas["Row"]["properties"]["key"])
    hlc = _header(
        wire.HLC_HEADER, _int(params.HLC, "an HLC stamp"), "The caller's highest seen stamp."
    )
    deadline = _header(
        wire.DEADLINE_HEADER,
        _int(params.HLC, "Unix ms"),
        "Unix ms after which this write must not apply (504).",
    )
    session = [
        {
            "name": wire.SESSION_HEADER,
            "in": "header",
            "required": False,
            "description": "The session token.",
            "content": {JSON: {"schema": _ref("SessionToken")}},
        },
        _header(
            wire.WAIT_HEADER,
            _int(params.SESSION_WAIT, "ms"),
            "How long a read may wait for this replica to meet the session token.",
        ),
    ]
    buckets = _query(
        "buckets", _int(params.IntRange(DEFAULT_BUCKETS, 1, MAX_BUCKETS), "how many key buckets")
    )
    key_path = {"name": "key", "in": "path", "required": True, "schema": key}
    tombstones = _query(
        "tombstones",
        _int(params.TOMBSTONES, "1: answer deleted rows too (value null, deleted true)"),
    )
    rw = ("413", "503", "504")
    paths: Doc = {
        "/v1/kv": {
            "get": _op(
                "scan",
                "Live rows with key > after, in key order; a page stops at limit rows or at "
                "max_page_bytes (one row more at most), and next says where to go on.",
                _scan_answers(),
                parameters=[
                    # Empty is the same as absent: from the first key.
                    _query("after", {"anyOf": [key, {"type": "string", "maxLength": 0}]}),
                    _query("limit", _int(params.LIMIT, "rows at most")),
                    tombstones,
                    _header(
                        "If-None-Match",
                        {"type": "string"},
                        "ETags of copies the caller holds: 304 if one is this page's.",
                    ),
                    *session,
                ],
            )
        },
        "/v1/kv/{key}": {
            "parameters": [key_path],
            "get": _op(
                "get",
                "The live row of a key.",
                _answers("Row", "The row.", ("404", "409"), session=True),
                parameters=[tombstones, *session],
            ),
            "put": _op(
                "put",
                "Write a value (any JSON but null).",
                _answers("Row", "The durable row.", rw, session=True),
                parameters=[hlc, deadline],
                requestBody=_body("PutBody"),
            ),
            "delete": _op(
                "delete",
                "Write a tombstone.",
                _answers("Row", "The durable tombstone.", ("404", "409", *rw), session=True),
                parameters=[hlc, deadline, *session],
            ),
        },
        "/v1/changes": {
            "get": _op(
                "changes",
                "Rows with version > since, in version order (tombstones too); a page stops at "
                "limit rows or at max_page_bytes, and then last_version is its last row's (cut at "
                "max_page_bytes, more is true: sent only then).",
                _answers("ChangesPage", "A page of the change feed.", ("409",), session=True),
                parameters=[
                    _query("since", _int(params.SINCE, "a version")),
                    _query("limit", _int(params.LIMIT, "rows at most")),
                    _query("wait", _int(params.LONGPOLL, "ms to wait for a change")),
                    *session,
                ],
            )
        },
        "/v1/replicate": {
            "post": _op(
                "replicate",
                "Merge another node's rows (last writer wins), atomically.",
                _replicate_answers(rw),
                parameters=[deadline],
                requestBody=_body("ReplicateRequest"),
            )
        },
        "/v1/purge": {
            "post": _op(
                "purge",
                "Drop the named tombstones, each only if it is still exactly that write.",
                _answers("PurgeResponse", "How many were dropped.", rw),
                parameters=[deadline],
                requestBody=_body("PurgeRequest"),
            )
        },
        "/v1/digest": {
            "get": _op(
                "digest",
                "One hash per key bucket.",
                _answers("Digest", "The digest.", ()),
                parameters=[buckets],
            )
        },
        "/v1/digest/{bucket}": {
            "get": _op(
                "bucket",
                "Every row of one bucket, tombstones included.",
                _answers("BucketRows", "The rows.", ()),
                parameters=[
                    {
                        "name": "bucket",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_BUCKETS - 1},
                    },
                    buckets,
                ],
            )
        },
        "/v1/status": {
            "get": _op(
                "status",
                "Counters; with since, answered once last_version is not since (or the wait ran "
                "out): a watch of the node's version, epoch and applied feeds.",
                _answers("NodeStatus", "The node's status.", ()),
                parameters=[
                    _query("since", _int(params.SINCE, "the version the caller knows")),
                    _query("wait", _int(params.LONGPOLL, "ms to wait for another version")),
                ],
            )
        },
        "/metrics": {
            "get": _op(
                "metrics",
                "Prometheus metrics.",
                {
                    "200": {
                        "description": "Prometheus text format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": _answers("Health", "", ())["401"],
                },
            )
        },
        "/healthz": {
            "get": _op(
                "health",
                "Liveness (no credential).",
                {
                    "200": {
                        "description": "Alive.",
                        "content": {JSON: {"schema": _ref("Health")}},
                    }
                },
                security=[],
            )
        },
        "/openapi.json": {
            "get": _op(
                "openapi",
                "This document (no credential).",
                {
                    "200": {
                        "description": "OpenAPI 3.1.",
                        "content": {JSON: {"schema": {"type": "object"}}},
                    }
                },
                security=[],
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dtm data node",
            "version": "1",
            "description": "A data node of dtm: key/value rows, the change feed and replication. "
            "Every endpoint but /healthz and /openapi.json needs the cluster credential.",
        },
        "servers": [{"url": server_url}],
        "security": [{CLUSTER: []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                CLUSTER: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The cluster credential ([cluster] secret_file).",
                }
            },
        },
    }
