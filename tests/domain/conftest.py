"""Fixtures of the domain unit tests: pure, in memory, no database and no network."""

from __future__ import annotations

import pytest
from domain_world import World


@pytest.fixture
def w() -> World:
    return World()
