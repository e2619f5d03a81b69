"""NotificationRepository, MediaRepository and RefreshTokenRepository on SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.models import Media, Notification, RefreshToken
from domain.pagination import PageRequest
from storage.db import Database, compose, in_list
from storage.rows import (
    MEDIA_COLUMNS,
    NOTIFICATION_COLUMNS,
    REFRESH_COLUMNS,
    newest_first,
    paged,
    to_media,
    to_notification,
    to_refresh_token,
)


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

    async def mark_read(self, user_id: int, up_to_id: int | None, at: datetime) -> int:
        sql = "UPDATE notifications SET read_at = {} WHERE user_id = {} AND read_at IS NULL"
        args: list[object] = [at, user_id]
        if up_to_id is not None:
            sql += " AND id <= {}"
            args.append(up_to_id)
        rows = await self._db.fetch(sql + " RETURNING id", *args)
        return len(rows)


class SqlMediaRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, media: Media) -> None:
        await self._db.execute(
            "INSERT INTO media (id, owner_id, content_type, size, width, height, sha256, "
            "created_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {})",
            media.id,
            media.owner_id,
            media.content_type,
            media.size,
            media.width,
            media.height,
            media.sha256,
            media.created_at,
        )

    async def get(self, media_id: int) -> Media | None:
        row = await self._db.fetchrow(
            compose("SELECT", MEDIA_COLUMNS, "FROM media WHERE id = {}"),
            media_id,
        )
        return None if row is None else to_media(row)

    async def get_many(self, media_ids: Sequence[int]) -> dict[int, Media]:
        ids = list(dict.fromkeys(media_ids))
        if not ids:
            return {}
        rows = await self._db.fetch(
            compose("SELECT", MEDIA_COLUMNS, "FROM media WHERE id IN", in_list(ids)),
            *ids,
        )
        return {media.id: media for media in map(to_media, rows)}


class SqlRefreshTokenRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, token: RefreshToken) -> None:
        await self._db.execute(
            "INSERT INTO refresh_tokens (token_hash, user_id, family_id, created_at, "
            "expires_at, rotated_at, revoked_at) VALUES ({}, {}, {}, {}, {}, {}, {})",
            token.token_hash,
            token.user_id,
            token.family_id,
            token.created_at,
            token.expires_at,
            token.rotated_at,
            token.revoked_at,
        )

    async def get(self, token_hash: str) -> RefreshToken | None:
        row = await self._db.fetchrow(
            compose("SELECT", REFRESH_COLUMNS, "FROM refresh_tokens WHERE token_hash = {}"),
            token_hash,
        )
        return None if row is None else to_refresh_token(row)

    async def mark_rotated(self, token_hash: str, at: datetime) -> bool:
        # Compare-and-set in one statement: of two concurrent refreshes with the same
        # token exactly one sees its row come back; the other is a reuse.
        row = await self._db.fetchrow(
            "UPDATE refresh_tokens SET rotated_at = {} "
            "WHERE token_hash = {} AND rotated_at IS NULL RETURNING token_hash",
            at,
            token_hash,
        )
        return row is not None

    async def revoke_family(self, family_id: str, at: datetime) -> None:
        await self._db.execute(
            "UPDATE refresh_tokens SET revoked_at = {} WHERE family_id = {} AND revoked_at IS NULL",
            at,
            family_id,
        )

    async def revoke_user(self, user_id: int, at: datetime) -> None:
        await self._db.execute(
            "UPDATE refresh_tokens SET revoked_at = {} WHERE user_id = {} AND revoked_at IS NULL",
            at,
            user_id,
        )
