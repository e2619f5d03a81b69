"""The home feed: the user's own posts and those of everyone they follow, newest first."""

from __future__ import annotations

from collections.abc import Sequence

from domain.models import Post, SeenPost
from domain.pagination import Page, PageRequest, fill_page
from domain.ports import FeedStore
from domain.services.base import Context


class FeedService:
    def __init__(self, ctx: Context, feed: FeedStore) -> None:
        self._ctx = ctx
        self._feed = feed

    async def home(self, user_id: int, page: PageRequest) -> Page[Post]:
        found = await self.home_seen(user_id, page)
        return found.map([s.post for s in found.items])

    async def home_seen(self, user_id: int, page: PageRequest) -> Page[SeenPost]:
        """The page with each post's author and the user's likes, read with the posts."""
        # The store answers only the user's and their followees' posts as of now (so the
        # actor sees an unfollow or a block at once, whatever the worker has done); a
        # post deleted since it was stored is dropped here. Dropped entries never cut a
        # page short (fill_page reads on).
        posts = self._ctx.store.posts

        async def keep(ids: Sequence[int]) -> list[tuple[int, SeenPost]]:
            live = await posts.seen_by(ids, user_id)
            return [(i, live[i]) for i in ids if i in live]

        return await fill_page(page, lambda p: self._feed.page(user_id, p), lambda i: i, keep)
