"""Turn records into wire views with batched look-ups: one query per kind, never one per row."""

from __future__ import annotations

from collections.abc import Sequence

from domain.models import Comment, Notification, Post
from domain.ports import Store
from domain.views import CommentView, MediaView, NotificationView, PostView, UserView


class Presenter:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def posts(self, posts: Sequence[Post], viewer_id: int | None) -> list[PostView]:
        if not posts:
            return []
        authors = await self._store.users.get_many(sorted({p.author_id for p in posts}))
        media_ids = sorted({m for p in posts for m in p.media_ids})
        media = await self._store.media.get_many(media_ids) if media_ids else {}
        liked = (
            await self._store.likes.liked(viewer_id, [p.id for p in posts])
            if viewer_id is not None
            else set()
        )
        views = []
        for p in posts:
            author = authors.get(p.author_id)
            if author is None:  # author row gone: nothing sensible to show
                continue
            views.append(
                PostView(
                    id=str(p.id),
                    author=UserView.of(author),
                    content=p.content,
                    media=[MediaView.of(media[m]) for m in p.media_ids if m in media],
                    like_count=p.like_count,
                    comment_count=p.comment_count,
                    liked_by_me=p.id in liked,
                    created_at=p.created_at,
                )
            )
        return views

    async def post(self, post: Post, viewer_id: int | None) -> PostView:
        views = await self.posts([post], viewer_id)
        return views[0]

    async def users(self, user_ids: Sequence[int]) -> list[UserView]:
        accounts = await self._store.users.get_many(list(user_ids))
        return [UserView.of(accounts[u]) for u in user_ids if u in accounts]

    async def comments(self, comments: Sequence[Comment]) -> list[CommentView]:
        authors = await self._store.users.get_many(sorted({c.author_id for c in comments}))
        return [CommentView.of(c, authors[c.author_id]) for c in comments if c.author_id in authors]

    async def notifications(self, items: Sequence[Notification]) -> list[NotificationView]:
        actors = await self._store.users.get_many(sorted({n.actor_id for n in items}))
        return [
            NotificationView(
                id=str(n.id),
                kind=n.kind,
                actor=UserView.of(actors[n.actor_id]),
                post_id=None if n.post_id is None else str(n.post_id),
                comment_id=None if n.comment_id is None else str(n.comment_id),
                read=n.read_at is not None,
                created_at=n.created_at,
            )
            for n in items
            if n.actor_id in actors
        ]
