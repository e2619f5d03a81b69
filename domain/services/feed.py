"""The home feed: the user's own posts and those of everyone they follow, newest first."""

from __future__ import annotations

from collections.abc import Sequence

from domain.models import Post
from domain.pagination import Page, PageRequest, fill_page
from domain.ports import FeedStore
from domain.services.base import Context, hidden_from


class FeedService:
    def __init__(self, ctx: Context, feed: FeedStore) -> None:
        self._ctx = ctx
        self._feed = feed

    async def home(self, user_id: int, page: PageRequest) -> Page[Post]:
        # Deletions, blocks and unfollows are filtered at read time: a stored feed may
        # predate them (the worker has not caught up), and the actor must see what they
        # just did. Filtered entries never cut a page short (fill_page reads on).
        store = self._ctx.store
        hidden = await hidden_from(self._ctx, user_id)

        async def keep(ids: Sequence[int]) -> list[tuple[int, Post]]:
            posts = await store.posts.get_many(ids)
            authors = {p.author_id for p in posts.values()} - hidden - {user_id}
            followed = await store.relations.followed_among(user_id, sorted(authors))
            return [
                (i, post)
                for i in ids
                if (post := posts.get(i)) is not None
                and post.author_id not in hidden
                and (post.author_id == user_id or post.author_id in followed)
            ]

        return await fill_page(page, lambda p: self._feed.page(user_id, p), lambda i: i, keep)
