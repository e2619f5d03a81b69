"""One real `plaza serve` per module for the WebSocket end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.limits import UNLIMITED_ENV
from tests.support.live_server import LiveServer, running_server

# Registration and writes are rate limited per IP and per user; these tests create many
# users from one loopback address, which is not what the limits are about.
TEST_ENV = dict(UNLIMITED_ENV)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("plaza"), TEST_ENV) as live:
        yield live


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "srv"
    path.mkdir()
    return path
