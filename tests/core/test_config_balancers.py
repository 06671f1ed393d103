"""`[handler] balancers`: the load balancers a handler fails over between (default: [balancer])."""

from __future__ import annotations

import pytest

from dtm.config import parse_config
from dtm.errors import ErrSyntaxInvalidArgs

BASE = '[[node]]\nname = "store1"\nport = 7411\n[balancer]\nhost = "lb"\nport = 7401\n'


def test_the_default_is_the_balancer_section() -> None:
    assert parse_config(BASE).balancer_urls == ["http://lb:7401"]


def test_several_balancers_and_tls() -> None:
    cfg = parse_config(BASE + '[handler]\nbalancers = ["lb1:7401", "10.0.0.2:81", "[::1]:7401"]\n')
    assert cfg.balancer_urls == ["http://lb1:7401", "http://10.0.0.2:81", "http://[::1]:7401"]
    assert cfg.handler.connect_timeout_ms == 1000
    tls = parse_config(BASE + '[handler]\nbalancers = ["a:1", "b:2"]\n[tls]\nca_file = "ca.pem"\n')
    assert tls.balancer_urls == ["https://a:1", "https://b:2"]


@pytest.mark.parametrize(
    "value",
    [
        '["lb1"]',
        '["lb1:0"]',
        '["lb1:70000"]',
        '[":7401"]',
        '["a:b:7401"]',
        '["lb 1:7401"]',
        '["http://lb:7401"]',
        '["a:1", "a:1"]',
        '"lb1:7401"',
    ],
)
def test_each_entry_is_checked(value: str) -> None:
    with pytest.raises(ErrSyntaxInvalidArgs, match="balancers"):
        parse_config(BASE + f"[handler]\nbalancers = {value}\n")


def test_an_unknown_handler_key_is_still_an_error() -> None:
    with pytest.raises(ErrSyntaxInvalidArgs, match="balancer_list"):
        parse_config(BASE + '[handler]\nbalancer_list = ["a:1"]\n')


def test_a_pushed_copy_cannot_outlive_the_purge_fence() -> None:
    """A copy the handler pushes lands within copy_wait_ms plus the clocks' offset; the sync
    purges only tombstones older than its fence, so the config must keep the one under the
    other (else a late copy could bring back a purged task)."""
    two = BASE + '[[node]]\nname = "b"\nport = 7412\n'
    ok = parse_config(two + "[handler]\nwrite_copies = 2\ncopy_wait_ms = 1000\n")
    assert ok.handler.copy_wait_ms == 1000
    with pytest.raises(ErrSyntaxInvalidArgs, match="call_timeout_ms"):
        parse_config(two + "[handler]\nwrite_copies = 2\n[sync]\ncall_timeout_ms = 300\n")
    # with one copy nothing is pushed, so nothing to check
    parse_config(two + "[handler]\ncopy_wait_ms = 5000\n[sync]\ncall_timeout_ms = 300\n")
