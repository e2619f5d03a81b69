"""MediaRepository on SQL (the rows; the bytes live in the blob store, storage.blobs)."""

from __future__ import annotations

from collections.abc import Sequence

from domain.models import Media
from storage.db import Database, compose, in_list
from storage.rows import MEDIA_COLUMNS, to_media


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
