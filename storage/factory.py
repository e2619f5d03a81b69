"""open_storage: everything the server needs from storage/, built from one URL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from piccolo.engine.base import Engine

from domain.errors import InsufficientStorage
from domain.ports import Leadership
from storage.db import Database
from storage.engine import close_engine, open_engine
from storage.feed import SqlFeedStore
from storage.leadership import (
    EMBEDDED_LOCK_KEY,
    RELAY_LOCK_KEY,
    FileLock,
    LocalLeadership,
    PgLeadership,
)
from storage.migrate import migrate
from storage.outbox import NOTIFY_CHANNEL, SqlOutboxReader
from storage.search import SqlSearchIndex
from storage.store import SqlStore
from storage.urls import DatabaseKind, DatabaseUrl, parse_database_url


@dataclass(eq=False)
class Storage:
    engine: Engine[Any]
    db: Database
    store: SqlStore
    outbox_reader: SqlOutboxReader
    feed: SqlFeedStore
    search: SqlSearchIndex
    url: DatabaseUrl
    # Held by the only `plaza serve` of a database that runs without Redis.
    exclusive: Leadership

    @property
    def kind(self) -> DatabaseKind:
        return self.db.kind

    async def ping(self) -> None:
        """Raises when the database cannot answer, or cannot store (a write failed for want
        of room in the last seconds): readiness checks."""
        await self.db.fetchval("SELECT 1 AS ok")
        if self.db.health.full_recently():
            raise InsufficientStorage("the database has no room left")

    def relay_leadership(self, *, listen: bool = True) -> Leadership:
        """A new candidate for the one outbox relay of this database; `listen`: woken by
        the outbox's NOTIFY of commits in other processes (PostgreSQL)."""
        if self.url.kind == "postgres":
            channel = NOTIFY_CHANNEL if listen else None
            return PgLeadership(self.url.target, RELAY_LOCK_KEY, listen=channel)
        return LocalLeadership(self.url.target)

    async def claim_exclusive(self) -> bool:
        """Become the only process serving this database without a shared event log;
        False when another one already is (PostgreSQL: an advisory lock; SQLite: a lock
        file beside the database)."""
        return await self.exclusive.hold()

    async def close(self) -> None:
        await self.exclusive.release()
        await close_engine(self.engine)


async def open_storage(
    database_url: str, *, run_migrations: bool = False, pool_max_size: int | None = None
) -> Storage:
    """Open the database at `database_url` (sqlite path/URL or postgresql://).

    With run_migrations (embedded start) pending migrations are applied first; otherwise
    the schema is assumed current (`plaza migrate` / the release step ran)."""
    if run_migrations:
        await migrate(database_url)
    engine = (
        await open_engine(database_url)
        if pool_max_size is None
        else await open_engine(database_url, pool_max_size=pool_max_size)
    )
    db = Database(engine)
    url = parse_database_url(database_url)
    exclusive: Leadership
    if url.kind == "postgres":
        exclusive = PgLeadership(url.target, EMBEDDED_LOCK_KEY)
    else:
        exclusive = FileLock(f"{url.target}.lock")
    return Storage(
        engine=engine,
        db=db,
        store=SqlStore(db),
        outbox_reader=SqlOutboxReader(db),
        feed=SqlFeedStore(db),
        search=SqlSearchIndex(db),
        url=url,
        exclusive=exclusive,
    )
