"""The levers' pure parts: offsets, the config edit of a skew, and why a partition is refused."""

from __future__ import annotations

import pytest

from dtm.cluster.levers import parse_offset, partition_refusal, with_offset
from dtm.config import default_config_text, parse_config
from dtm.errors import ErrNoDataFound, ErrSyntaxInvalidArgs


def test_offsets_in_milliseconds_or_seconds() -> None:
    assert [parse_offset(t) for t in ("+2000", "-1500", "0", "3s", "-2s", "250ms")] == [
        2000, -1500, 0, 3000, -2000, 250,
    ]  # fmt: skip
    for bad in ("", "+", "2 s", "1.5s", "--3"):
        with pytest.raises(ErrSyntaxInvalidArgs):
            parse_offset(bad)


def test_a_skew_edits_only_that_nodes_table_and_zero_removes_the_key() -> None:
    text = default_config_text(3)
    skewed = with_offset(text, "store2", 3000)
    cfg = parse_config(skewed)
    assert [n.clock_offset_ms for n in cfg.node] == [0, 3000, 0]
    again = with_offset(skewed, "store2", -50)
    assert again.count("clock_offset_ms") == 1
    assert parse_config(again).node[1].clock_offset_ms == -50
    assert with_offset(again, "store2", 0).strip() == text.strip()
    with pytest.raises(ErrNoDataFound):
        with_offset(text, "store9", 1)


def test_a_partition_on_one_machine_is_refused_with_the_reason() -> None:
    cfg = parse_config(default_config_text(2))
    why = partition_refusal(cfg, "store1", "store2")
    assert why is not None and "loopback" in why and "test_netns_partition" in why
    with pytest.raises(ErrSyntaxInvalidArgs):
        partition_refusal(cfg, "store1", "store1")
    with pytest.raises(ErrSyntaxInvalidArgs):
        partition_refusal(cfg, "store1", "nowhere")
