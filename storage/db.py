"""One database handle: parameterised SQL on an explicit engine, transactions, commit hooks.

piccolo keeps the current transaction in a ContextVar on the engine (SQLiteEngine and
PostgresEngine alike) and `run_querystring` sends every query of that context to the
transaction's connection. So a repository call made inside `async with db.transaction():`
joins the transaction without any connection being passed around, and nested
`transaction()` blocks join the outer one.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import math
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from string import Formatter
from typing import Any

import asyncpg
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.querystring import QueryString

from domain.errors import InsufficientStorage, Unavailable
from storage.engine import engine_kind
from storage.urls import DatabaseKind

logger = logging.getLogger(__name__)

Row = Mapping[str, Any]
Callback = Callable[[], object]

# Plaza's statements answer in milliseconds; 5 s is reached only when the database is
# down, frozen or drowning, and bounds what a request waits before it is told 503. It
# covers waiting for a pooled connection too (a frozen server never hands one back).
STATEMENT_DEADLINE_S = 5.0
# A transaction is a handful of statements; its BEGIN and COMMIT are bounded with it.
TRANSACTION_DEADLINE_S = 5.0
# What a client is told to wait before retrying during an outage.
RETRY_AFTER_S = 2.0
# /ready reports a full database this long after a write last failed for want of room.
FULL_WINDOW_S = 10.0

# What a database that is down, restarting or unreachable raises (a frozen one raises
# nothing: the deadlines turn it into TimeoutError).
_OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable (ConnectionError included)
    TimeoutError,
    asyncpg.PostgresConnectionError,  # cannot connect now, too many connections, ...
    asyncpg.InterfaceError,  # the connection was closed under the query
    asyncpg.exceptions.OperatorInterventionError,  # admin or crash shutdown
)


# What SQLite says when its file cannot grow (SQLITE_FULL: the disk or tmpfs is full) or
# cannot be written at all (SQLITE_READONLY: a read-only mount or file).
_SQLITE_NO_ROOM = ("database or disk is full", "readonly database")


def _no_room(error: BaseException) -> bool:
    if isinstance(error, sqlite3.OperationalError):
        text = str(error).lower()
        return any(message in text for message in _SQLITE_NO_ROOM)
    # SQLSTATE 53100: PostgreSQL could not extend a file.
    return isinstance(error, asyncpg.exceptions.DiskFullError)


class _Health:
    """Turns outages into 503s and a full disk into 507s, and says so once when it starts
    and once when it ends (not once per request: an outage must not flood the log)."""

    def __init__(self) -> None:
        self.down_since: float | None = None
        # Since when writes fail for want of room; None while they succeed.
        self.full_since: float | None = None
        self._last_full = -math.inf

    def full_recently(self) -> bool:
        """A write failed for want of room within the last `FULL_WINDOW_S` (readiness:
        a probe cannot tell whether there is room without writing, and an instance out of
        its load balancer gets no writes that could prove it, so the report expires)."""
        return time.monotonic() - self._last_full < FULL_WINDOW_S

    def failed(self, error: BaseException) -> BaseException:
        if _no_room(error):
            self._last_full = time.monotonic()
            if self.full_since is None:
                self.full_since = time.monotonic()
                logger.error(
                    "the database cannot store anything (%s); answering writes with 507"
                    " until it has room again",
                    error,
                )
            return InsufficientStorage("the server has no room to store this; nothing was saved")
        if isinstance(error, sqlite3.OperationalError):
            # Busy past the busy timeout (another process holds the write lock) or the
            # file went away: retry later. Other SQLite errors are bugs, not outages.
            text = str(error).lower()
            if "locked" not in text and "unable to open" not in text:
                return error
        elif not isinstance(error, _OUTAGE_ERRORS):
            return error
        if self.down_since is None:
            self.down_since = time.monotonic()
            logger.error(
                "database unavailable (%s: %s); answering 503 until it is back",
                type(error).__name__,
                error or "no answer within the deadline",
            )
        return Unavailable("the database is unavailable", retry_after=RETRY_AFTER_S)

    def stored(self) -> None:
        """A write committed: the database has room (again)."""
        self._last_full = -math.inf
        if self.full_since is not None:
            logger.warning(
                "the database stores again after %.1f s", time.monotonic() - self.full_since
            )
            self.full_since = None

    def ok(self, started: float) -> None:
        # Only a statement sent after the outage began proves it over (one in flight
        # when it began may still succeed).
        if self.down_since is not None and started > self.down_since:
            logger.warning("database is back after %.1f s", time.monotonic() - self.down_since)
            self.down_since = None


def compose(*fragments: str) -> str:
    """Join constant SQL fragments: column lists, identifiers chosen from a fixed set,
    `{}` placeholders. Never a value: values travel as query parameters."""
    return " ".join(fragments)


def in_list(values: Sequence[object]) -> str:
    """`({}, {}, {})` for an IN list of that many parameters (SQLite has no `= ANY($1)`)."""
    return "(" + ", ".join("{}" for _ in values) + ")"


@functools.lru_cache(maxsize=4096)
def _pg_template(sql: str) -> tuple[str, int]:
    """`sql` with its `{}` numbered `$1, $2, ...` and how many there are: what piccolo's
    QueryString.compile_string makes of it, without parsing the template again on every
    call. Statements come from a fixed set of shapes (an IN list of n values is one shape
    per n, n bounded by the largest batch), so the cache stays small."""
    out: list[str] = []
    n = 0
    for literal, field, _, _ in Formatter().parse(sql):
        out.append(literal)
        if field is not None:
            n += 1
            out.append(f"${n}")
    return "".join(out), n


def _pg_compiled(sql: str, args: tuple[Any, ...]) -> tuple[str, Sequence[Any]]:
    template, n = _pg_template(sql)
    if n != len(args) or any(isinstance(a, QueryString) for a in args):
        return QueryString(sql, *args).compile_string(engine_type="postgres")  # nested SQL
    return template, args


class Database:
    """Runs SQL written with `{}` placeholders (piccolo's QueryString compiles them to `$n`
    on PostgreSQL and `?` on SQLite); values always travel as parameters."""

    def __init__(self, engine: Engine[Any]) -> None:
        self.engine = engine
        self.kind: DatabaseKind = engine_kind(engine)
        # The commit callbacks of the transaction running in this context (None: none is).
        self._pending: contextvars.ContextVar[list[Callback] | None] = contextvars.ContextVar(
            f"plaza_tx_{id(self)}", default=None
        )
        # SQLite has one writer at a time. Writers of this process queue here, handed the
        # turn the moment the previous one commits; left to SQLite they would poll its
        # busy handler, which sleeps in growing steps (20 concurrent likes: ~1.5 s instead
        # of a few ms). Other processes still meet the busy timeout.
        self._sqlite_writer: asyncio.Lock | None = asyncio.Lock() if self.kind == "sqlite" else None
        self.health = _Health()

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        started = time.monotonic()
        try:
            if isinstance(self.engine, PostgresEngine):
                rows = await self._pg_fetch(sql, args)
            else:
                query = QueryString(sql, *args)
                async with asyncio.timeout(STATEMENT_DEADLINE_S):
                    if self._pending.get() is None and _writes(sql):
                        assert self._sqlite_writer is not None
                        async with self._sqlite_writer:
                            rows = await self.engine.run_querystring(query)
                    else:
                        rows = await self.engine.run_querystring(query)
        except Exception as error:
            translated = self.health.failed(error)
            if translated is error:
                raise
            raise translated from error
        self.health.ok(started)
        if self.health.full_since is not None and self._pending.get() is None and _writes(sql):
            self.health.stored()
        return list(rows or ())

    async def _pg_fetch(self, template: str, values: tuple[Any, ...]) -> Any:
        """A statement on PostgreSQL with a deadline that holds against a frozen server:
        asyncpg's own timeout and task cancellation both end in a connection reset that
        waits on the server, so the watchdog closes the socket instead (the statement
        fails at once with a connection error, and the pool replaces the connection).
        Inside a transaction, the transaction's watchdog bounds it."""
        assert isinstance(self.engine, PostgresEngine)
        sql, args = _pg_compiled(template, values)
        current = self.engine.current_transaction.get()
        if current is not None:
            return await current.connection.fetch(sql, *args)
        pool = self.engine.pool
        if pool is None:
            return await self.engine.run_querystring(QueryString(template, *values))
        async with pool.acquire(timeout=STATEMENT_DEADLINE_S) as connection:
            watchdog = asyncio.get_running_loop().call_later(
                STATEMENT_DEADLINE_S, connection.terminate
            )
            try:
                return await connection.fetch(sql, *args)
            finally:
                watchdog.cancel()

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else next(iter(row.values()))

    async def execute(self, sql: str, *args: Any) -> None:
        await self.fetch(sql, *args)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if self._pending.get() is not None:
            yield  # nested: part of the outer transaction
            return
        callbacks: list[Callback] = []
        async with contextlib.AsyncExitStack() as stack:
            if self._sqlite_writer is not None:
                await stack.enter_async_context(self._sqlite_writer)
            token = self._pending.set(callbacks)
            try:
                if isinstance(self.engine, SQLiteEngine):
                    # BEGIN IMMEDIATE takes the write lock up front: writers of other
                    # processes wait on the busy timeout instead of failing with "database
                    # is locked" when a deferred transaction tries to upgrade to a write.
                    tx = self.engine.transaction(transaction_type=TransactionType.immediate)
                else:
                    tx = self.engine.transaction()
                watchdog: asyncio.TimerHandle | None = None
                try:
                    # The acquire is bounded by the timeout; once the transaction holds a
                    # connection, the watchdog closes it at the deadline (see _pg_fetch).
                    async with asyncio.timeout(TRANSACTION_DEADLINE_S + 1.0), tx:
                        if isinstance(tx, PostgresTransaction):
                            watchdog = asyncio.get_running_loop().call_later(
                                TRANSACTION_DEADLINE_S, tx.connection.terminate
                            )
                        yield
                except Exception as error:
                    translated = self.health.failed(error)
                    if translated is error:
                        raise
                    raise translated from error
                finally:
                    if watchdog is not None:
                        watchdog.cancel()
            finally:
                self._pending.reset(token)
        # Only reached after a commit: an exception in the body propagates above.
        self.health.stored()
        for callback in callbacks:
            _run_callback(callback)

    def after_commit(self, callback: Callback) -> None:
        """Run `callback` once the current transaction commits (never on rollback);
        outside a transaction the write already committed, so run it now."""
        pending = self._pending.get()
        if pending is None:
            _run_callback(callback)
        else:
            pending.append(callback)


def _writes(sql: str) -> bool:
    return sql.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE")


def _run_callback(callback: Callback) -> None:
    # The data is committed whatever a hook does: a failing hook (a relay waker) must not
    # turn a successful write into an error for the client.
    try:
        callback()
    except Exception:
        logger.exception("after-commit callback failed")
