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
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from piccolo.engine.base import Engine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.querystring import QueryString

from storage.engine import engine_kind
from storage.urls import DatabaseKind

logger = logging.getLogger(__name__)

Row = Mapping[str, Any]
Callback = Callable[[], object]


def compose(*fragments: str) -> str:
    """Join constant SQL fragments: column lists, identifiers chosen from a fixed set,
    `{}` placeholders. Never a value: values travel as query parameters."""
    return " ".join(fragments)


def in_list(values: Sequence[object]) -> str:
    """`({}, {}, {})` for an IN list of that many parameters (SQLite has no `= ANY($1)`)."""
    return "(" + ", ".join("{}" for _ in values) + ")"


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

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        query = QueryString(sql, *args)
        if self._sqlite_writer is not None and self._pending.get() is None and _writes(sql):
            async with self._sqlite_writer:
                rows = await self.engine.run_querystring(query)
        else:
            rows = await self.engine.run_querystring(query)
        return list(rows or ())

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
                async with tx:
                    yield
            finally:
                self._pending.reset(token)
        # Only reached after a commit: an exception in the body propagates above.
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
