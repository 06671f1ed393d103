"""The handler's session token: a client ``hlc`` beyond the max offset is dropped."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from dtm.core.hlc import MAX_STAMP
from dtm.handler.session import parse_token

NOW = 1_790_000_000_000


@given(st.integers(0, MAX_STAMP))
def test_a_session_hlc_is_kept_iff_within_the_max_offset(hlc: int) -> None:
    token = parse_token(json.dumps({"hlc": hlc}), lambda: NOW, 500)
    kept = (hlc >> 16) <= NOW + 500
    assert token.hlc == (hlc if kept else 0)


def test_the_year_2453_session_hlc_is_dropped_and_the_rest_kept() -> None:
    header = json.dumps(
        {"versions": {"store1": 3}, "epochs": {"store1": "e" * 16}, "hlc": 999999999999999999}
    )
    token = parse_token(header, lambda: NOW, 500)
    assert token.hlc == 0 and token.versions == {"store1": 3}
    near = ((NOW + 400) << 16) | 5  # seen from a node slightly ahead: still works
    assert parse_token(json.dumps({"hlc": near}), lambda: NOW, 500).hlc == near
