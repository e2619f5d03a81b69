"""One contract suite, two engines: every test taking `storage` runs on SQLite (a file
under tmp_path) and on the real PostgreSQL (a fresh database per test)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from storage.factory import Storage, open_storage


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'plaza.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[Storage]:
    opened = await open_storage(database_url, run_migrations=True)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def ids() -> Iterator[int]:
    # Increasing like snowflakes, and past 32 bits to exercise the 64-bit columns.
    return itertools.count(1 << 40)
