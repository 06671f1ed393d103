"""A client session at the request handler, shared by the end-to-end tests.

Rule: every call is a new HTTP connection (`tests.harness.request`) carrying the session token
of the last answer that had one, as the CLI does across its commands.
"""

from __future__ import annotations

import json
from typing import Any

from tests.harness import Response, request


class Session:
    """One session at ``url`` (a handler's base URL)."""

    def __init__(self, url: str, token: str = "") -> None:
        self.url = url
        self.token = token

    def call(
        self, method: str, path: str = "", body: Any = None, headers: dict[str, str] | None = None
    ) -> Response:
        hdrs = {"X-Dtm-Session": self.token} if self.token else {}
        hdrs.update(headers or {})
        resp = request(method, self.url + path, body, hdrs)
        self.token = resp.headers.get("x-dtm-session", self.token)
        return resp

    def nodes(self) -> set[str]:
        """The nodes the session's token names."""
        return set(json.loads(self.token or "{}").get("versions", {}))
