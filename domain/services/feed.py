"""The home feed: the user's own posts and those of everyone they follow, newest first."""

from __future__ import annotations

from domain.models import Post
from domain.pagination import Page, PageRequest
from domain.ports import FeedStore
from domain.services.base import Context, hidden_from, post_list


class FeedService:
    def __init__(self, ctx: Context, feed: FeedStore) -> None:
        self._ctx = ctx
        self._feed = feed

    async def home(self, user_id: int, page: PageRequest) -> Page[Post]:
        # Blocks and deletions are filtered at read time too: a cached feed may predate
        # them. Filtered entries never cut a page short (post_list reads on past them).
        hidden = await hidden_from(self._ctx, user_id)
        return await post_list(self._ctx, page, lambda p: self._feed.page(user_id, p), hidden)
