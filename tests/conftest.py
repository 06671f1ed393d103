"""Shared fixtures: `cluster` makes a LocalCluster whose processes are always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from tests.harness import LocalCluster

# No timing thresholds in tests: a property test is judged by its examples, never by how long one
# took on a busy machine (Hypothesis's default 200 ms deadline would make the suite flaky).
settings.register_profile("dtm", deadline=None)
settings.load_profile("dtm")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Callable[..., LocalCluster]]:
    """A factory: ``c = cluster(nodes=2, sections={...}, node_options={...})``."""
    made: list[LocalCluster] = []

    def make(**kwargs: Any) -> LocalCluster:
        c = LocalCluster(tmp_path / f"cluster{len(made)}", **kwargs)
        made.append(c)
        return c

    try:
        yield make
    finally:
        for c in made:
            c.stop_all()
