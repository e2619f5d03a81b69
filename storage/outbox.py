"""The outbox: events written in the write's transaction, relayed after commit, kept until
every consumer kind has processed them; and the dead letters beside it."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from domain.events import DomainEvent, encode_event
from domain.models import DeadLetter, OutboxEntry
from storage.db import Database, compose, in_list
from storage.rows import to_datetime

# The PostgreSQL NOTIFY channel a commit of outbox entries wakes the relay leader with.
NOTIFY_CHANNEL = "plaza_outbox"


class SqlOutbox:
    """Outbox (the writers' side). After a transaction that appended events commits, every
    registered listener is called once (the in-process relay's waker); on PostgreSQL the
    transaction also NOTIFYs, which wakes a relay in another process at commit."""

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
        for n, event in enumerate(events):
            if self._db.kind == "postgres":
                values.append("({}, {}, {})")  # seq: the sequence's default
            else:
                # SQLite: this transaction holds the one write lock, so MAX is stable.
                values.append("({}, {}, {}, (SELECT COALESCE(MAX(seq), 0) FROM outbox) + {})")
            args.extend((event.event_id, encode_event(event), event.at))
            if self._db.kind != "postgres":
                args.append(n + 1)
        columns = (
            "(id, event, created_at)"
            if self._db.kind == "postgres"
            else "(id, event, created_at, seq)"
        )
        # The event id is the outbox id: appending the same event twice writes one row.
        insert = compose(
            "INSERT INTO outbox", columns, "VALUES", ", ".join(values), "ON CONFLICT DO NOTHING"
        )
        if self._db.kind == "postgres":
            # The notification is delivered at commit, to the relay leader wherever it
            # runs; sent by the same statement as the insert (a data-modifying CTE always
            # runs), it costs no round trip of its own.
            args.append(NOTIFY_CHANNEL)
            insert = f"WITH appended AS ({insert}) SELECT pg_notify({{}}, '')"
        await self._db.execute(insert, *args)
        self._db.after_commit(self._notify)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()


class SqlOutboxReader:
    """OutboxReader: the relay's, the consumer kinds' and the operator's side."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # The log epoch this reader last relayed under (None: not yet, in this process).
        self._epoch: str | None = None

    async def pending(self, epoch: str, limit: int) -> list[OutboxEntry]:
        if epoch != self._epoch:
            # A log we have not relayed to from here (a new process, or the log lost its
            # data): what was relayed elsewhere and is not done is to be sent again. Once
            # per epoch change, so the read below stays on its small index.
            await self._db.execute(
                "UPDATE outbox SET relay_epoch = NULL WHERE completed_at IS NULL "
                "AND relay_epoch IS NOT NULL AND relay_epoch <> {}",
                epoch,
            )
            self._epoch = epoch
        rows = await self._db.fetch(
            "SELECT id, event FROM outbox WHERE relay_epoch IS NULL AND completed_at IS NULL "
            "ORDER BY seq LIMIT {}",
            limit,
        )
        return [OutboxEntry(int(row["id"]), bytes(row["event"])) for row in rows]

    async def mark_relayed(self, outbox_ids: Sequence[int], epoch: str, at: datetime) -> None:
        ids = list(dict.fromkeys(outbox_ids))
        if not ids:
            return
        await self._db.execute(
            compose(
                "UPDATE outbox SET relay_epoch = {}, relayed_at = {} WHERE id IN", in_list(ids)
            ),
            epoch,
            at,
            *ids,
        )

    async def complete(self, outbox_ids: Sequence[int], at: datetime) -> None:
        ids = list(dict.fromkeys(outbox_ids))
        if not ids:
            return
        await self._db.execute(
            compose(
                "UPDATE outbox SET completed_at = {} WHERE completed_at IS NULL AND id IN",
                in_list(ids),
            ),
            at,
            *ids,
        )

    async def dead_letter(self, letter: DeadLetter) -> None:
        await self._db.execute(
            "INSERT INTO dead_letters (id, outbox_id, kind, attempts, error, failed_at) "
            "VALUES ({}, {}, {}, {}, {}, {}) ON CONFLICT (outbox_id, kind) DO UPDATE "
            "SET attempts = excluded.attempts, error = excluded.error, "
            "failed_at = excluded.failed_at",
            secrets.randbits(62),
            letter.outbox_id,
            letter.kind,
            letter.attempts,
            letter.error,
            letter.failed_at,
        )

    async def dead_letters(self, kind: str | None = None, limit: int = 100) -> list[DeadLetter]:
        sql = (
            "SELECT d.outbox_id AS outbox_id, d.kind AS kind, d.attempts AS attempts, "
            "d.error AS error, d.failed_at AS failed_at, o.event AS event "
            "FROM dead_letters d JOIN outbox o ON o.id = d.outbox_id"
        )
        args: list[Any] = []
        if kind is not None:
            sql += " WHERE d.kind = {}"
            args.append(kind)
        rows = await self._db.fetch(sql + " ORDER BY d.outbox_id LIMIT {}", *args, limit)
        return [
            DeadLetter(
                outbox_id=int(row["outbox_id"]),
                kind=str(row["kind"]),
                attempts=int(row["attempts"]),
                error=str(row["error"]),
                failed_at=to_datetime(row["failed_at"]),
                event=bytes(row["event"]),
            )
            for row in rows
        ]

    async def replay(self, outbox_id: int, kind: str) -> bool:
        async with self._db.transaction():
            gone = await self._db.fetch(
                "DELETE FROM dead_letters WHERE outbox_id = {} AND kind = {} RETURNING id",
                outbox_id,
                kind,
            )
            if not gone:
                return False
            # Pending again: the relay re-sends it; the kinds that did it already are
            # idempotent, the one that gave up tries again.
            await self._db.execute(
                "UPDATE outbox SET completed_at = NULL, relay_epoch = NULL WHERE id = {}",
                outbox_id,
            )
        return True

    async def purge_completed(self, older_than: datetime) -> int:
        rows = await self._db.fetch(
            "DELETE FROM outbox WHERE completed_at IS NOT NULL AND completed_at < {} "
            "AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.outbox_id = outbox.id) "
            "RETURNING id",
            older_than,
        )
        return len(rows)

    async def open_count(self) -> int:
        """Entries some consumer kind has not processed yet (readiness, tests, metrics)."""
        value = await self._db.fetchval(
            "SELECT COUNT(*) AS n FROM outbox WHERE completed_at IS NULL"
        )
        return int(value or 0)
