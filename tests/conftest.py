"""Shared fixtures: the real PostgreSQL and Redis services.

Tests that need a service ask for `postgres_url` or `redis_url`. When the service is not
reachable they skip, unless PLAZA_REQUIRE_SERVICES=1 (as in CI), where they fail: a
missing service must never turn into a silently green run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.support.pg_cluster import PrivatePostgres
    from tests.support.redis_server import PrivateRedis

PG_HOST = os.environ.get("PLAZA_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("PLAZA_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("PLAZA_TEST_PG_USER", "postgres")
REDIS_HOST = os.environ.get("PLAZA_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("PLAZA_TEST_REDIS_PORT", "6379"))


def services_required() -> bool:
    return os.environ.get("PLAZA_REQUIRE_SERVICES", "") not in ("", "0", "false")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def need_service(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if services_required():
        pytest.fail(f"{message} and PLAZA_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    need_service("PostgreSQL", PG_HOST, PG_PORT)
    name = f"plaza_test_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The real Redis; tests namespace their keys with `redis_prefix` and clean up."""
    need_service("Redis", REDIS_HOST, REDIS_PORT)
    yield f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture
def redis_prefix() -> str:
    return f"plaza-test-{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of this test's own, to kill, freeze and restart (never the shared one)."""
    if shutil.which("redis-server") is None:
        if services_required():
            pytest.fail("redis-server is not installed and PLAZA_REQUIRE_SERVICES=1")
        pytest.skip("redis-server is not installed")
    from tests.support.redis_server import private_redis as start

    with start(tmp_path) as server:
        yield server


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of this test's own (initdb), to stop and freeze."""
    from tests.support.pg_cluster import pg_bindir
    from tests.support.pg_cluster import private_postgres as start

    if pg_bindir() is None:
        if services_required():
            pytest.fail("PostgreSQL server binaries are missing and PLAZA_REQUIRE_SERVICES=1")
        pytest.skip("PostgreSQL server binaries (initdb) are not installed")
    with start() as cluster:
        yield cluster


# A test that runs this long is stuck, not slow: print what every asyncio task is waiting
# on (faulthandler only shows the event loop's select), then let the test go on.
STUCK_AFTER_S = 240.0


@pytest.fixture(autouse=True)
def _report_stuck_tasks(request: pytest.FixtureRequest) -> Iterator[None]:
    import asyncio
    import gc
    import sys
    import threading

    def report() -> None:
        print(f"\n--- {request.node.nodeid} stuck for {STUCK_AFTER_S:.0f} s ---", file=sys.stderr)
        loops = [
            o
            for o in gc.get_objects()
            if isinstance(o, asyncio.AbstractEventLoop) and o.is_running()
        ]
        for loop in loops:
            with contextlib.suppress(RuntimeError):  # the set changed under us: try once more
                for task in list(asyncio.all_tasks(loop)):
                    task.print_stack(limit=12, file=sys.stderr)

    timer = threading.Timer(STUCK_AFTER_S, report)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of its own: a real disk that can be filled (ENOSPC, SQLITE_FULL)
    without touching the machine's. Needs mount rights (root, as in CI)."""
    mountpoint = tmp_path / "small-disk"
    mountpoint.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        message = f"cannot mount a tmpfs: {done.stderr.strip()}"
        if services_required():
            pytest.fail(f"{message} and PLAZA_REQUIRE_SERVICES=1", pytrace=False)
        pytest.skip(message)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)
