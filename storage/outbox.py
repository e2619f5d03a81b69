"""The outbox: events written in the write's transaction, relayed after commit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from domain.events import DomainEvent, encode_event
from storage.db import Database, compose, in_list


class SqlOutbox:
    """Outbox (the writers' side). After a transaction that appended events commits, every
    registered listener is called once (the relay's waker), so the relay does not have to
    poll to notice new events; polling stays only as the fallback for other processes."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._listeners: list[Callable[[], object]] = []

    def add_listener(self, listener: Callable[[], object]) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], object]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    async def append(self, events: Sequence[DomainEvent]) -> None:
        if not events:
            return
        values: list[str] = []
        args: list[Any] = []
        for event in events:
            values.append("({}, {}, {})")
            args.extend((event.event_id, encode_event(event), event.at))
        # The event id is the outbox id: appending the same event twice writes one row.
        await self._db.execute(
            compose(
                "INSERT INTO outbox (id, event, created_at) VALUES",
                ", ".join(values),
                "ON CONFLICT DO NOTHING",
            ),
            *args,
        )
        self._db.after_commit(self._notify)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()


class SqlOutboxReader:
    """OutboxReader (the relay's side)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def pending(self, limit: int) -> list[tuple[int, bytes]]:
        rows = await self._db.fetch(
            "SELECT id, event FROM outbox WHERE relayed_at IS NULL ORDER BY id LIMIT {}", limit
        )
        return [(int(row["id"]), bytes(row["event"])) for row in rows]

    async def mark_relayed(self, outbox_ids: Sequence[int], at: datetime) -> None:
        ids = list(dict.fromkeys(outbox_ids))
        if not ids:
            return
        await self._db.execute(
            compose(
                "UPDATE outbox SET relayed_at = {} WHERE id IN",
                in_list(ids),
                "AND relayed_at IS NULL",
            ),
            at,
            *ids,
        )

    async def purge_relayed(self, older_than: datetime) -> int:
        rows = await self._db.fetch(
            "DELETE FROM outbox WHERE relayed_at IS NOT NULL AND relayed_at < {} RETURNING id",
            older_than,
        )
        return len(rows)
