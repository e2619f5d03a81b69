"""NotificationRepository on SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.models import Notification
from domain.pagination import PageRequest
from storage.db import Database, compose, in_list
from storage.rows import NOTIFICATION_COLUMNS, newest_first, paged, to_notification


class SqlNotificationRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, notification: Notification) -> bool:
        # The id is the causing event's id: a replayed event hits the primary key.
        row = await self._db.fetchrow(
            "INSERT INTO notifications (id, user_id, kind, actor_id, post_id, comment_id, "
            "created_at, read_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}) "
            "ON CONFLICT DO NOTHING RETURNING id",
            notification.id,
            notification.user_id,
            notification.kind,
            notification.actor_id,
            notification.post_id,
            notification.comment_id,
            notification.created_at,
            notification.read_at,
        )
        return row is not None

    async def add_many(self, notifications: Sequence[Notification]) -> None:
        if not notifications:
            return
        values = ", ".join("({}, {}, {}, {}, {}, {}, {}, {})" for _ in notifications)
        args: list[object] = []
        for n in notifications:
            args.extend(
                (
                    n.id,
                    n.user_id,
                    n.kind,
                    n.actor_id,
                    n.post_id,
                    n.comment_id,
                    n.created_at,
                    n.read_at,
                )
            )
        await self._db.execute(
            compose(
                "INSERT INTO notifications (id, user_id, kind, actor_id, post_id, comment_id,",
                "created_at, read_at) VALUES",
                values,
                "ON CONFLICT DO NOTHING",
            ),
            *args,
        )

    async def page(self, user_id: int, page: PageRequest) -> list[Notification]:
        sql, args = paged(
            compose("SELECT", NOTIFICATION_COLUMNS, "FROM notifications WHERE user_id = {}"),
            [user_id],
            page,
        )
        rows = newest_first(await self._db.fetch(sql, *args), page)
        return [to_notification(row) for row in rows]

    async def unread_count(self, user_id: int) -> int:
        value = await self._db.fetchval(
            "SELECT COUNT(*) AS n FROM notifications WHERE user_id = {} AND read_at IS NULL",
            user_id,
        )
        return int(value or 0)

    async def unread_counts(self, user_ids: Sequence[int]) -> dict[int, int]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return {}
        rows = await self._db.fetch(
            compose(
                "SELECT user_id, COUNT(*) AS n FROM notifications WHERE read_at IS NULL",
                "AND user_id IN",
                in_list(ids),
                "GROUP BY user_id",
            ),
            *ids,
        )
        counts = dict.fromkeys(ids, 0)
        counts.update({int(row["user_id"]): int(row["n"]) for row in rows})
        return counts

    async def mark_read(self, user_id: int, up_to_id: int | None, at: datetime) -> int:
        sql = "UPDATE notifications SET read_at = {} WHERE user_id = {} AND read_at IS NULL"
        args: list[object] = [at, user_id]
        if up_to_id is not None:
            sql += " AND id <= {}"
            args.append(up_to_id)
        rows = await self._db.fetch(sql + " RETURNING id", *args)
        return len(rows)
