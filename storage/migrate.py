"""Apply the committed piccolo migrations programmatically (`plaza migrate`, embedded start).

piccolo's migration runner looks its engine up globally: `engine_finder()` imports the
module named by PICCOLO_CONF and reads its `DB`, and the `migration` bookkeeping table
caches the first engine it saw in `Migration._meta.db`. So a run installs its engine in
`storage.piccolo_conf`, points PICCOLO_CONF there and resets that cache, all under a lock,
and restores everything afterwards. Repositories are unaffected: they never use the global.

Idempotent: applied migrations are recorded in piccolo's `migration` table, and a second
run applies nothing. On PostgreSQL a session advisory lock serialises concurrent runs
from several processes (a release step racing a worker start).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import weakref
from collections.abc import AsyncIterator
from typing import Any

from piccolo.apps.migrations.commands.forwards import ForwardsMigrationManager
from piccolo.apps.migrations.tables import Migration
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine

from storage import piccolo_conf
from storage.engine import close_engine, open_engine

logger = logging.getLogger(__name__)

APP_NAME = "storage"
# Any constant; it only has to be the same in every Plaza process (pg_advisory_lock key).
_PG_MIGRATION_LOCK_KEY = 0x504C415A41  # "PLAZA"

_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _process_lock() -> asyncio.Lock:
    # One lock per event loop: an asyncio.Lock is bound to the loop that first waits on
    # it, and tests run each case in a fresh loop.
    loop = asyncio.get_running_loop()
    lock = _locks.get(loop)
    if lock is None:
        lock = _locks[loop] = asyncio.Lock()
    return lock


class MigrationError(RuntimeError):
    pass


async def migrate(database_url: str) -> None:
    """Apply every migration not yet applied to the database at `database_url`."""
    async with _process_lock():
        engine = await open_engine(database_url, pool_max_size=2)
        try:
            async with _cross_process_lock(engine):
                await _run_forwards(engine)
        finally:
            await close_engine(engine)


@contextlib.asynccontextmanager
async def _cross_process_lock(engine: Engine[Any]) -> AsyncIterator[None]:
    if not isinstance(engine, PostgresEngine) or engine.pool is None:
        # SQLite: one process owns an embedded database; the migrations' own
        # transactions take the write lock anyway.
        yield
        return
    async with engine.pool.acquire() as connection:
        await connection.execute("SELECT pg_advisory_lock($1)", _PG_MIGRATION_LOCK_KEY)
        try:
            yield
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", _PG_MIGRATION_LOCK_KEY)


async def _run_forwards(engine: Engine[Any]) -> None:
    previous_conf = os.environ.get("PICCOLO_CONF")
    previous_db = Migration._meta._db
    os.environ["PICCOLO_CONF"] = piccolo_conf.__name__
    piccolo_conf.use_engine(engine)
    Migration._meta.db = engine
    output = io.StringIO()
    try:
        # piccolo reports progress with print(); keep it off stdout (the CLI and the
        # server log what matters) but hand it to the log for debugging.
        with contextlib.redirect_stdout(output):
            result = await ForwardsMigrationManager(app_name=APP_NAME).run()
    finally:
        piccolo_conf.use_engine(None)
        Migration._meta._db = previous_db
        if previous_conf is None:
            os.environ.pop("PICCOLO_CONF", None)
        else:
            os.environ["PICCOLO_CONF"] = previous_conf
        logger.debug("piccolo migrations:\n%s", output.getvalue())
    if not result.success:
        raise MigrationError(result.message or "migration failed")
