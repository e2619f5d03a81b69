"""Build a piccolo engine from a database URL.

`sqlite:///relative.db`, `sqlite:////absolute.db` or a bare path → SQLiteEngine;
`postgresql://...` (or `postgres://...`) → PostgresEngine with an asyncpg pool.

Repositories never rely on a global engine (piccolo's PICCOLO_CONF / `Table._meta.db`):
every query runs on the engine object handed to `storage.db.Database`, so two databases
can be open in one process at once (tests do that). Only the migration runner needs
piccolo's global lookup, see `storage.migrate`.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from dataclasses import dataclass
from typing import Any, Literal

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine

EngineKind = Literal["sqlite", "postgres"]

# How long a SQLite writer waits for the write lock before failing with "database is
# locked". Transactions take the lock up front (BEGIN IMMEDIATE) and are short, so a wait
# this long only happens under a pile-up; failing sooner would turn a burst into errors.
SQLITE_BUSY_TIMEOUT_S = 15.0

# asyncpg pool bounds: one connection per concurrently running query or transaction. Ten
# keeps a fleet of processes well under PostgreSQL's default max_connections (100).
PG_POOL_MIN_SIZE = 1
PG_POOL_MAX_SIZE = 10


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    kind: EngineKind
    # SQLite: the file path; PostgreSQL: the DSN as given.
    target: str


def parse_database_url(url: str) -> DatabaseUrl:
    """Raises ValueError with one clear line on anything unusable."""
    url = url.strip()
    if not url:
        raise ValueError("database URL is empty")
    if url.startswith(("postgresql://", "postgres://")):
        return DatabaseUrl("postgres", url)
    if url.startswith("sqlite://"):
        # SQLAlchemy's convention: sqlite:///relative/path, sqlite:////absolute/path.
        path = url.removeprefix("sqlite://")
        if path.startswith("/"):
            path = path[1:]
        if not path:
            raise ValueError(f"database URL {url!r} names no file")
    elif "://" in url:
        raise ValueError(f"unsupported database URL scheme in {url!r} (sqlite or postgresql)")
    else:
        path = url
    if path == ":memory:" or path.startswith("file::memory:"):
        # piccolo's SQLite engine opens a connection per query: an in-memory database
        # would be a new, empty one every time.
        raise ValueError("in-memory SQLite is not supported; give a file path")
    return DatabaseUrl("sqlite", path)


def prepare_sqlite_file(path: str) -> None:
    """Create the directory and switch the file to WAL (blocking; run in a thread).

    WAL is a property of the file, so setting it once persists: readers then never block
    the writer and the writer never blocks readers.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    connection = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


def create_engine(url: str) -> Engine[Any]:
    """Build (not connect) an engine. PostgresEngine's constructor queries the server
    version synchronously, so call this from a thread when a loop is running."""
    parsed = parse_database_url(url)
    if parsed.kind == "postgres":
        return PostgresEngine(config={"dsn": parsed.target})
    # `timeout` becomes sqlite3's busy timeout on every connection piccolo opens.
    return SQLiteEngine(path=parsed.target, timeout=SQLITE_BUSY_TIMEOUT_S)


def engine_kind(engine: Engine[Any]) -> EngineKind:
    kind = engine.engine_type
    if kind not in ("sqlite", "postgres"):
        raise ValueError(f"unsupported engine {kind!r}")
    return "sqlite" if kind == "sqlite" else "postgres"


async def open_engine(url: str, *, pool_max_size: int = PG_POOL_MAX_SIZE) -> Engine[Any]:
    """Build the engine and get it ready: WAL on SQLite, a started pool on PostgreSQL."""
    parsed = parse_database_url(url)
    if parsed.kind == "sqlite":
        await asyncio.to_thread(prepare_sqlite_file, parsed.target)
    engine = await asyncio.to_thread(create_engine, url)
    if isinstance(engine, PostgresEngine):
        await engine.start_connection_pool(
            min_size=min(PG_POOL_MIN_SIZE, pool_max_size), max_size=pool_max_size
        )
    return engine


async def close_engine(engine: Engine[Any]) -> None:
    if isinstance(engine, PostgresEngine) and engine.pool is not None:
        await engine.close_connection_pool()
