"""Fixtures of the REST tests: the real app on real storage.

`api` runs on SQLite by default; a test parametrized with `BOTH_BACKENDS` (see
api_world) also runs on the real PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from api_world import Api, make_settings, running_api


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'plaza.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(make_settings(tmp_path, database_url)) as client:
        yield client
