"""Uploads: verified images, stored content-addressed."""

from __future__ import annotations

import hashlib

from domain.errors import NotFound
from domain.models import Media
from domain.ports import BlobStore, ImageProcessor
from domain.services.base import Context


class MediaService:
    def __init__(self, ctx: Context, blobs: BlobStore, images: ImageProcessor) -> None:
        self._ctx = ctx
        self._blobs = blobs
        self._images = images

    async def upload(self, owner_id: int, data: bytes) -> Media:
        image = await self._images.process(data)
        digest = hashlib.sha256(image.data).hexdigest()
        await self._blobs.put(digest, image.data)
        media = Media(
            id=self._ctx.ids.next_id(),
            owner_id=owner_id,
            content_type=image.content_type,
            size=len(image.data),
            width=image.width,
            height=image.height,
            sha256=digest,
            created_at=self._ctx.clock.now(),
        )
        async with self._ctx.store.transaction():
            await self._ctx.store.media.add(media)
        return media

    async def get(self, media_id: int) -> Media:
        media = await self._ctx.store.media.get(media_id)
        if media is None:
            raise NotFound("media not found")
        return media

    async def read(self, media: Media) -> bytes:
        data = await self._blobs.get(media.sha256)
        if data is None:
            raise NotFound("media not found")
        return data
