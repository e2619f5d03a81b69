"""Reads that cut across resources: the home feed, notifications and search."""

from __future__ import annotations

from typing import Literal

from domain import validation
from domain.errors import Forbidden, ValidationFailed
from domain.events import NotificationsRead
from domain.models import Account, Notification, Post
from domain.pagination import MAX_LIMIT, PageRequest
from domain.ports import FeedStore, SearchIndex
from domain.services.base import Context

SearchType = Literal["users", "posts"]


class FeedService:
    def __init__(self, ctx: Context, feed: FeedStore) -> None:
        self._ctx = ctx
        self._feed = feed

    async def home(self, user_id: int, page: PageRequest) -> list[Post]:
        # Blocks are filtered at read time too: a cached feed may predate the block.
        hidden = await self._ctx.store.relations.block_set(user_id)
        visible: dict[int, Post] = {}
        cursor = page
        while True:
            ids = await self._feed.page(user_id, cursor)
            posts = await self._ctx.store.posts.get_many(ids)
            visible.update(
                (i, posts[i]) for i in ids if i in posts and posts[i].author_id not in hidden
            )
            if len(ids) < cursor.limit or len(visible) >= page.limit:
                break
            # Filtered entries must not cut the page short: an empty page reads as the end
            # of the feed. Read on past them, a full page at a time; stale entries are
            # bounded by the cached feed's cap, so this ends quickly.
            if page.min_id is not None:
                cursor = PageRequest(
                    limit=MAX_LIMIT, max_id=page.max_id, since_id=page.since_id, min_id=max(ids)
                )
            else:
                cursor = PageRequest(limit=MAX_LIMIT, max_id=min(ids), since_id=page.since_id)
        ordered = sorted(visible, reverse=True)
        # min_id pages forward: the oldest `limit` items after it, still newest first.
        kept = ordered[-page.limit :] if page.min_id is not None else ordered[: page.limit]
        return [visible[i] for i in kept]


class NotificationService:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def page(self, owner_id: int, actor_id: int, page: PageRequest) -> list[Notification]:
        if owner_id != actor_id:
            raise Forbidden("notifications are visible only to their owner")
        return await self._ctx.store.notifications.page(owner_id, page)

    async def unread_count(self, user_id: int) -> int:
        return await self._ctx.store.notifications.unread_count(user_id)

    async def mark_read(self, user_id: int, up_to_id: int | None) -> int:
        """Returns the unread count after marking."""
        store, now = self._ctx.store, self._ctx.clock.now()
        async with store.transaction():
            changed = await store.notifications.mark_read(user_id, up_to_id, now)
            if changed:
                # Other devices of the user learn the new count from this event.
                await store.outbox.append(
                    [NotificationsRead(event_id=self._ctx.ids.next_id(), at=now, user_id=user_id)]
                )
        return await store.notifications.unread_count(user_id)


class SearchService:
    def __init__(self, ctx: Context, index: SearchIndex) -> None:
        self._ctx = ctx
        self._index = index

    async def users(self, q: str, viewer_id: int | None, page: PageRequest) -> list[Account]:
        ids = await self._index.users(validation.search_query(q), page)
        accounts = await self._ctx.store.users.get_many(ids)
        hidden = await self._hidden(viewer_id)
        return [accounts[i] for i in ids if i in accounts and i not in hidden]

    async def posts(self, q: str, viewer_id: int | None, page: PageRequest) -> list[Post]:
        ids = await self._index.posts(validation.search_query(q), page)
        posts = await self._ctx.store.posts.get_many(ids)
        hidden = await self._hidden(viewer_id)
        return [posts[i] for i in ids if i in posts and posts[i].author_id not in hidden]

    async def _hidden(self, viewer_id: int | None) -> set[int]:
        if viewer_id is None:
            return set()
        return await self._ctx.store.relations.block_set(viewer_id)


def search_type(value: str | None) -> SearchType:
    if value == "users":
        return "users"
    if value in ("posts", None):
        return "posts"
    raise ValidationFailed("type must be 'users' or 'posts'", details={"field": "type"})
