"""Fixtures for the storage contract: one store factory per backend, and a manual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from store_kit import BACKENDS, ManualClock, StoreFactory, open_backend

from dtm.storage.base import Store


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def make_store(
    backend: str, tmp_path: Path, clock: ManualClock
) -> AsyncIterator[StoreFactory]:
    """``await make_store(node="n1")``: a new empty store; every one is closed at teardown."""
    made: list[Store] = []

    async def make(node: str = "n1", epoch: str = "e1", clock_: ManualClock | None = None) -> Store:
        path = tmp_path / f"{node}-{len(made)}.db"
        store = open_backend(backend, path, node, clock_ or clock, epoch)
        made.append(store)
        return store

    try:
        yield make
    finally:
        for store in made:
            await store.close()


@pytest.fixture
async def store(make_store: StoreFactory) -> Store:
    return await make_store()
