"""Build a piccolo engine from a database URL.

`sqlite:///relative.db` or `sqlite:////absolute.db` → SQLiteEngine; `postgresql://...`
(or `postgres://...`) → PostgresEngine with an asyncpg pool (grammar: storage.urls).

Repositories never rely on a global engine (piccolo's PICCOLO_CONF / `Table._meta.db`):
every query runs on the engine object handed to `storage.db.Database`, so two databases
can be open in one process at once (tests do that). Only the migration runner needs
piccolo's global lookup, see `storage.migrate`.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from typing import Any

import aiosqlite
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType, dict_factory

from storage.urls import DatabaseKind, parse_database_url

# How long a SQLite writer waits for the write lock before failing with "database is
# locked". Transactions take the lock up front (BEGIN IMMEDIATE) and are short, so a wait
# this long only happens under a pile-up; failing sooner would turn a burst into errors.
SQLITE_BUSY_TIMEOUT_S = 15.0

# asyncpg pool bounds: one connection per concurrently running query or transaction. Ten
# keeps a fleet of processes well under PostgreSQL's default max_connections (100).
PG_POOL_MIN_SIZE = 1
PG_POOL_MAX_SIZE = 10


# Reads outside a transaction share a few long-lived connections instead of piccolo's
# connection (and thread) per query: that open/close cost ~1-2 ms, more than most of our
# queries. Four lets concurrent requests read in parallel on a 2-core machine; WAL lets
# them read while a writer commits.
SQLITE_READERS = 4


class _SQLiteTransaction(SQLiteTransaction):
    """piccolo's SQLite transaction, whose end always closes its connection and leaves
    the task's context. piccolo's own skips both when COMMIT or ROLLBACK raises, and on a
    full disk both do: SQLite rolls a transaction back by itself on SQLITE_FULL, so the
    ROLLBACK that follows fails with "no transaction is active". The connection then
    leaked, and a long-lived task (the relay) kept a dead transaction as its current one."""

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        if self._parent:
            return exception is None
        try:
            if exception is not None:
                if not self._rolled_back and self.connection.in_transaction:
                    await self.rollback()  # type: ignore[no-untyped-call]
            elif not self._committed and not self._rolled_back:
                await self.commit()  # type: ignore[no-untyped-call]
        finally:
            try:
                await self.connection.close()
            finally:
                self.engine.current_transaction.reset(self.context)
        return exception is None


class PlazaSQLiteEngine(SQLiteEngine):
    """SQLiteEngine with pooled reader connections and WAL-appropriate durability.

    synchronous=NORMAL: in WAL mode a commit survives an application crash; only an OS
    crash or power loss can roll back the last transactions — the usual trade for an
    embedded server, and it halves the cost of a write transaction (no fsync per commit).
    """

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__(path=path, timeout=timeout)
        self._readers: asyncio.Queue[aiosqlite.Connection] | None = None
        self._opened: list[aiosqlite.Connection] = []

    def transaction(
        self,
        transaction_type: TransactionType = TransactionType.deferred,
        allow_nested: bool = True,
    ) -> SQLiteTransaction:
        return _SQLiteTransaction(
            engine=self, transaction_type=transaction_type, allow_nested=allow_nested
        )

    async def get_connection(self) -> aiosqlite.Connection:
        connection: aiosqlite.Connection = await super().get_connection()
        await connection.execute("PRAGMA synchronous = NORMAL")
        return connection

    async def _run_in_new_connection(
        self,
        query: str,
        args: list[Any] | None = None,
        query_type: str = "generic",
        table: Any = None,
    ) -> Any:
        if not _is_read(query):
            return await super()._run_in_new_connection(query, args, query_type, table)
        readers = await self._reader_pool()
        connection = await readers.get()
        try:
            async with connection.execute(query, args or []) as cursor:
                return await cursor.fetchall()
        finally:
            readers.put_nowait(connection)

    async def _reader_pool(self) -> asyncio.Queue[aiosqlite.Connection]:
        if self._readers is not None:
            return self._readers
        # Published before the first await: concurrent first reads wait on this one pool
        # (its connections arrive below) instead of each opening a pool of their own.
        readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._readers = readers
        for _ in range(SQLITE_READERS):
            try:
                # Autocommit: a reader never holds a read transaction open, so it always
                # sees the latest commit and never blocks WAL checkpoints.
                connection = await aiosqlite.connect(
                    **{**self.connection_kwargs, "isolation_level": None}
                )
            except Exception:
                if not self._opened:
                    self._readers = None  # nothing to read with: let the next call retry
                raise
            connection.row_factory = dict_factory  # type: ignore[assignment]
            self._opened.append(connection)
            readers.put_nowait(connection)
        return readers

    async def close_readers(self) -> None:
        opened, self._opened, self._readers = self._opened, [], None
        for connection in opened:
            await connection.close()


def _is_read(query: str) -> bool:
    head = query.lstrip()[:6].upper()
    return head == "SELECT" or (head.startswith("WITH") and "RETURNING" not in query.upper())


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
    return PlazaSQLiteEngine(path=parsed.target, timeout=SQLITE_BUSY_TIMEOUT_S)


def engine_kind(engine: Engine[Any]) -> DatabaseKind:
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
            min_size=min(PG_POOL_MIN_SIZE, pool_max_size),
            max_size=pool_max_size,
            reset=_keep_session,
        )
    return engine


async def _keep_session(connection: Any) -> None:
    """The pool's reset of a released connection: nothing beyond what asyncpg always does
    first (roll back a transaction left open, drop listeners). Its default reset also runs
    `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` on the server: one
    more round trip for every statement, since each runs on a connection of its own (a
    quarter of the server's CPU on a feed read, profiled), to undo session state Plaza
    never leaves on a pooled connection: no SET, no LISTEN or cursors (the relay leader
    holds a connection of its own), and the migrations release their advisory lock."""
    return None


# A graceful pool close waits for every connection to come back; a task cancelled in the
# middle of a query may never give its back, so shutdown waits this long, then terminates.
POOL_CLOSE_TIMEOUT_S = 5.0


async def close_engine(engine: Engine[Any]) -> None:
    if isinstance(engine, PostgresEngine) and engine.pool is not None:
        pool = engine.pool
        try:
            async with asyncio.timeout(POOL_CLOSE_TIMEOUT_S):
                await pool.close()
        except TimeoutError:
            pool.terminate()
        engine.pool = None
    if isinstance(engine, PlazaSQLiteEngine):
        await engine.close_readers()
