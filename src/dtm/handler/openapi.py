"""The OpenAPI 3.1 document of the request handler's API, served at ``GET /openapi.json``.

Rule: the schemas are generated from the wire structs the handler really decodes and encodes
(msgspec.json.schema_components); only the paths, statuses and headers are written here.
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec

from dtm import wire
from dtm.core.tasks import ID_LEN, MIN_PREFIX

JSON = "application/json"
USER = "user"  # the name of the security scheme: a user's token
CLUSTER = "cluster"  # the cluster credential: the handler's internal endpoints
INTERNAL = ("/v1/status", "/metrics")
Doc = dict[str, Any]

_STRUCTS = (
    wire.Task,
    wire.TaskPage,
    wire.CreateTask,
    wire.UpdateTask,
    wire.Deleted,
    wire.ErrorBody,
    wire.Health,
    wire.HandlerStatus,
    wire.SessionToken,
)

_ERRORS = {
    "400": "ErrSyntaxInvalidArgs: a malformed body, reference, header or query",
    "401": "ErrUnauthorized: no valid credential (a user token, or the cluster's)",
    "404": "ErrNoDataFound: no task with that ID",
    "409": "ErrAmbiguousID (with `candidates`), or ErrNotCaughtUp: no data node has caught up "
    "with the session yet",
    "413": "ErrPayloadTooLarge: the body or the text is over its cap",
    "502": "ErrMaybeApplied: the write was sent but its answer was lost; it may have been "
    "applied (look before writing again)",
    "503": "ErrUnavailable: the load balancer or every data node is unreachable",
    "504": "ErrTimeout: the load balancer did not answer in time",
}


def _ref(name: str) -> Doc:
    return {"$ref": f"#/components/schemas/{name}"}


def _session_header() -> Doc:
    return {
        "description": "The session token after this request (JSON SessionToken).",
        "schema": {"type": "string"},
    }


def _ok(status: str, schema: str, what: str) -> Doc:
    return {
        status: {
            "description": what,
            "headers": {wire.SESSION_HEADER: _session_header()},
            "content": {JSON: {"schema": _ref(schema)}},
        }
    }


def _errors(*statuses: str) -> Doc:
    return {
        s: {
            "description": _ERRORS[s],
            "headers": {wire.SESSION_HEADER: _session_header()},
            "content": {JSON: {"schema": _ref("ErrorBody")}},
        }
        for s in statuses
    }


def _body(schema: str) -> Doc:
    return {"required": True, "content": {JSON: {"schema": _ref(schema)}}}


_SESSION_PARAM: Doc = {
    "name": wire.SESSION_HEADER,
    "in": "header",
    "required": False,
    "description": "The session token from the previous answer (JSON SessionToken); "
    "absent means a new session.",
    "content": {JSON: {"schema": _ref("SessionToken")}},
}

_NODE_PARAM: Doc = {
    "name": wire.NODE_HEADER,
    "in": "header",
    "required": False,
    "description": "Serve this request from this data node only (a node name); a node the "
    "cluster does not have, or one that is down, is 503 (504 if it does not answer in time), "
    "never an answer from another node.",
    "schema": {"type": "string", "pattern": wire.NODE_NAME_PATTERN},
}

_LIST_PARAMS: list[Doc] = [
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "Answer one page of at most this many tasks; without it, the whole "
        "list (streamed when long).",
        "schema": {"type": "integer", "minimum": 1, "maximum": wire.MAX_TASK_PAGE},
    },
    {
        "name": "after",
        "in": "query",
        "required": False,
        "description": "Start after this task ID: the previous page's `next`.",
        "schema": {
            "type": "string",
            "pattern": f"^[{wire.TASK_ID_ALPHABET}]{{{ID_LEN}}}(?![\\s\\S])",
        },
    },
]

_REF_PARAM: Doc = {
    "name": "ref",
    "in": "path",
    "required": True,
    "description": f"A full task ID or any unique prefix of at least {MIN_PREFIX} characters "
    "(case-insensitive; o reads as 0, i and l as 1).",
    # core.tasks.normalize_ref: the ID alphabet in either case, and the aliases o, i and l.
    "schema": {
        "type": "string",
        "minLength": MIN_PREFIX,
        "maxLength": ID_LEN,
        "pattern": f"^[0-9A-TV-Za-tv-z]{{{MIN_PREFIX},{ID_LEN}}}(?![\\s\\S])",
    },
}


def _plain(what: str, media: str = JSON, schema: Doc | None = None) -> Doc:
    content: Doc = {media: {"schema": schema or {"type": "string"}}}
    return {"200": {"description": what, "content": content}}


def _secured(paths: Doc) -> Doc:
    """Every operation of the task routes needs a user token; the internal endpoints need the
    cluster credential."""
    for path, item in paths.items():
        scheme = USER if path.startswith("/v1/tasks") else CLUSTER if path in INTERNAL else None
        if scheme is None:
            continue
        for method, op in item.items():
            if method != "parameters":
                op["security"] = [{scheme: []}]
                if "401" not in op["responses"]:
                    op["responses"] |= {"401": _errors("401")["401"]}
    return paths


def build_document(server_url: str) -> Doc:
    """The whole document, for a handler answering at ``server_url``."""
    _, components = msgspec.json.schema_components(
        _STRUCTS, ref_template="#/components/schemas/{name}"
    )
    components = copy.deepcopy(components)
    # An update changes at least one field (core.tasks.check_update).
    components["UpdateTask"]["anyOf"] = [
        {"required": [f], "properties": {f: {"not": {"type": "null"}}}}
        for f in ("status", "text", "due", "tags")
    ]
    read_errors = ("400", "401", "409", "503", "504")
    ref_errors = ("400", "401", "404", "409", "503", "504")
    paths: Doc = {
        "/v1/tasks": {
            "parameters": [_SESSION_PARAM, _NODE_PARAM],
            "post": {
                "operationId": "createTask",
                "summary": "Create a task; the handler picks its ID unless one is given.",
                "requestBody": _body("CreateTask"),
                "responses": _ok("201", "Task", "The new task.")
                | _errors("400", "401", "409", "413", "502", "503", "504"),
            },
            "get": {
                "operationId": "listTasks",
                "summary": "The tasks in ID order, a page at a time with `limit` and `after`.",
                "parameters": _LIST_PARAMS,
                "responses": _ok("200", "TaskPage", "The tasks; `next` is null at the end.")
                | _errors(*read_errors),
            },
        },
        "/v1/tasks/{ref}": {
            "parameters": [_REF_PARAM, _SESSION_PARAM, _NODE_PARAM],
            "get": {
                "operationId": "getTask",
                "summary": "One task.",
                "responses": _ok("200", "Task", "The task.") | _errors(*ref_errors),
            },
            "patch": {
                "operationId": "updateTask",
                "summary": "Change a task's status and/or text (at least one).",
                "requestBody": _body("UpdateTask"),
                "responses": _ok("200", "Task", "The task as changed.")
                | _errors(*ref_errors, "413", "502"),
            },
            "delete": {
                "operationId": "deleteTask",
                "summary": "Delete a task.",
                "responses": _ok("200", "Deleted", "The task is gone.")
                | _errors(*ref_errors, "502"),
            },
        },
        "/healthz": {
            "get": {
                "operationId": "health",
                "summary": "Liveness.",
                "responses": _plain("Alive.", schema=_ref("Health")),
            }
        },
        "/v1/status": {
            "get": {
                "operationId": "status",
                "summary": "Counters since start.",
                "responses": _plain("The counters.", schema=_ref("HandlerStatus")),
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics.",
                "responses": _plain("Prometheus text format.", "text/plain"),
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "responses": _plain("OpenAPI 3.1.", schema={"type": "object"}),
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dtm request handler",
            "version": "1",
            "description": "The task API of dtm: a TODO list on a small distributed key-value "
            "store. Every answer carries the session token in the "
            f"{wire.SESSION_HEADER} header; send it back to read your own writes.",
        },
        "servers": [{"url": server_url}],
        "paths": _secured(paths),
        "components": {
            "schemas": components,
            "securitySchemes": {
                USER: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A user's token (`dtm user add NAME`): the task routes need "
                    "it, and a user sees only their own tasks.",
                },
                CLUSTER: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The cluster credential (`[cluster] secret_file`): the "
                    "internal endpoints need it.",
                },
            },
        },
    }
