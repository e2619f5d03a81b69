"""Posts, likes and comments."""

from __future__ import annotations

from collections.abc import Sequence

from domain import validation
from domain.errors import Forbidden, NotFound, ValidationFailed
from domain.events import CommentCreated, LikeCreated, LikeRemoved, PostCreated, PostDeleted
from domain.models import Account, Comment, Post
from domain.pagination import Page, PageRequest, fill_page
from domain.services.base import Context, hidden_from, user_list, visible_post, visible_user


class PostService:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def create(
        self,
        author_id: int,
        content: str,
        media_ids: list[int] | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[Post, bool]:
        """Returns the post and whether this call created it (False: an earlier request
        with the same idempotency key did)."""
        text = validation.text(content, field="content", max_chars=validation.POST_MAX_CHARS)
        key = validation.idempotency_key(idempotency_key)
        store = self._ctx.store
        if key is not None:
            existing = await store.posts.get_by_idempotency_key(author_id, key)
            if existing is not None:
                return existing, False
        media = tuple(dict.fromkeys(media_ids or ()))
        if len(media) > validation.MEDIA_PER_POST_MAX:
            raise ValidationFailed(
                f"at most {validation.MEDIA_PER_POST_MAX} media per post",
                details={"field": "media_ids"},
            )
        if media:
            owned = await store.media.get_many(list(media))
            if any(m not in owned or owned[m].owner_id != author_id for m in media):
                raise ValidationFailed(
                    "media_ids must be your own uploads",
                    code="invalid_media",
                    details={"field": "media_ids"},
                )
        now = self._ctx.clock.now()
        post = Post(
            id=self._ctx.ids.next_id(),
            author_id=author_id,
            content=text,
            media_ids=media,
            created_at=now,
            idempotency_key=key,
        )
        async with store.transaction():
            created = await store.posts.add(post)
            if created:
                await store.outbox.append(
                    [PostCreated(event_id=post.id, at=now, post_id=post.id, author_id=author_id)]
                )
        if not created:
            # A concurrent request with the same key won the race: return its post.
            assert key is not None
            winner = await store.posts.get_by_idempotency_key(author_id, key)
            if winner is None:
                raise NotFound("post not found")
            return winner, False
        return post, True

    async def get(self, post_id: int, viewer_id: int | None) -> Post:
        return await visible_post(self._ctx, post_id, viewer_id)

    async def delete(self, post_id: int, actor_id: int) -> None:
        store = self._ctx.store
        post = await store.posts.get(post_id)
        if post is None or post.deleted_at is not None:
            raise NotFound("post not found")
        if post.author_id != actor_id:
            raise Forbidden("only the author can delete a post")
        now = self._ctx.clock.now()
        async with store.transaction():
            if await store.posts.soft_delete(post_id, now):
                await store.outbox.append(
                    [
                        PostDeleted(
                            event_id=self._ctx.ids.next_id(),
                            at=now,
                            post_id=post_id,
                            author_id=actor_id,
                        )
                    ]
                )

    async def by_author(
        self, author_id: int, viewer_id: int | None, page: PageRequest
    ) -> Page[Post]:
        await visible_user(self._ctx, author_id, viewer_id)
        if viewer_id is not None and await self._ctx.store.relations.blocked_either_way(
            viewer_id, author_id
        ):
            return Page.of([], lambda p: p.id, page)
        posts = await self._ctx.store.posts.by_author(author_id, page)
        return Page.of(posts, lambda p: p.id, page)

    async def like(self, post_id: int, user_id: int) -> Post:
        post = await visible_post(self._ctx, post_id, user_id)
        store, now = self._ctx.store, self._ctx.clock.now()
        async with store.transaction():
            like_id = self._ctx.ids.next_id()
            if await store.likes.add(like_id, post_id, user_id, now):
                count = await store.posts.add_to_like_count(post_id, 1)
                await store.outbox.append(
                    [
                        LikeCreated(
                            event_id=like_id,
                            at=now,
                            post_id=post_id,
                            post_author_id=post.author_id,
                            user_id=user_id,
                            like_count=count,
                        )
                    ]
                )
            # Read back inside the transaction: once it commits, nothing may turn the
            # committed like into an error reply (a failed read after it would).
            after = await store.posts.get(post_id)
        return after or post

    async def unlike(self, post_id: int, user_id: int) -> Post:
        post = await visible_post(self._ctx, post_id, user_id)
        store, now = self._ctx.store, self._ctx.clock.now()
        async with store.transaction():
            if await store.likes.remove(post_id, user_id):
                count = await store.posts.add_to_like_count(post_id, -1)
                await store.outbox.append(
                    [
                        LikeRemoved(
                            event_id=self._ctx.ids.next_id(),
                            at=now,
                            post_id=post_id,
                            post_author_id=post.author_id,
                            user_id=user_id,
                            like_count=count,
                        )
                    ]
                )
            # Read back inside the transaction: once it commits, nothing may turn the
            # committed like into an error reply (a failed read after it would).
            after = await store.posts.get(post_id)
        return after or post

    async def likers(self, post_id: int, viewer_id: int | None, page: PageRequest) -> Page[Account]:
        await visible_post(self._ctx, post_id, viewer_id)
        return await user_list(
            self._ctx, page, lambda p: self._ctx.store.likes.likers(post_id, p), viewer_id
        )

    async def comment(self, post_id: int, author_id: int, content: str) -> tuple[Comment, int]:
        """Returns the comment and the post's new comment_count."""
        text = validation.text(content, field="content", max_chars=validation.COMMENT_MAX_CHARS)
        post = await visible_post(self._ctx, post_id, author_id)
        store, now = self._ctx.store, self._ctx.clock.now()
        comment = Comment(
            id=self._ctx.ids.next_id(),
            post_id=post_id,
            author_id=author_id,
            content=text,
            created_at=now,
        )
        async with store.transaction():
            await store.comments.add(comment)
            count = await store.posts.add_to_comment_count(post_id, 1)
            await store.outbox.append(
                [
                    CommentCreated(
                        event_id=comment.id,
                        at=now,
                        comment_id=comment.id,
                        post_id=post_id,
                        post_author_id=post.author_id,
                        author_id=author_id,
                        comment_count=count,
                    )
                ]
            )
        return comment, count

    async def comments(
        self, post_id: int, viewer_id: int | None, page: PageRequest
    ) -> Page[Comment]:
        await visible_post(self._ctx, post_id, viewer_id)
        hidden = await hidden_from(self._ctx, viewer_id)

        async def keep(comments: Sequence[Comment]) -> list[tuple[int, Comment]]:
            return [(c.id, c) for c in comments if c.author_id not in hidden]

        return await fill_page(
            page, lambda p: self._ctx.store.comments.by_post(post_id, p), lambda c: c.id, keep
        )
