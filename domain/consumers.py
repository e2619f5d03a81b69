"""The consumer kinds: what happens after a write commits.

Three kinds, each with its own place in the event log (a consumer group), its own
acknowledgements and retries, so one kind failing never re-runs the others:

- `feed`: posts into followers' stored feeds (a no-op for the SQL pull store);
- `notifications`: like / comment / follow → a notification row and its pushes;
- `live`: posts, likes, comments and follows → the channels whose subscribers see them.

Delivery is at least once, so every effect is idempotent by event id: a notification takes
the id of the event that caused it, feed fan-out is a set insert, and every push carries
its event id as an idempotency key, so a replayed event pushes nothing twice while a
publish that failed is simply retried. Each consumer names its recipients explicitly, as
Zulip's send_event(realm, event, users).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from domain import channel_names
from domain.events import (
    BlockCreated,
    CommentCreated,
    DomainEvent,
    FollowCreated,
    FollowRemoved,
    LikeCreated,
    LikeRemoved,
    NotificationsRead,
    PostCreated,
    PostDeleted,
)
from domain.models import Notification, NotificationKind
from domain.ports import FeedStore, Publisher
from domain.services.base import Context
from domain.views import (
    CommentPosted,
    PostGone,
    PostLiked,
    Presenter,
    UnreadCount,
    UserFollowed,
    UserView,
)


class Kind(StrEnum):
    """The consumer kinds, in the order an embedded process runs them: the feed first, so
    that a live `post.created` never reaches a client before its feed page shows the post."""

    FEED = "feed"
    NOTIFICATIONS = "notifications"
    LIVE = "live"

    @property
    def bit(self) -> int:
        """This kind's bit in an outbox entry's done mask."""
        return 1 << list(Kind).index(self)


ALL_KINDS = sum(kind.bit for kind in Kind)


class Consumer(Protocol):
    async def handle(self, event: DomainEvent) -> None: ...


async def _audience(ctx: Context, author_id: int) -> list[int]:
    """The author and every follower not in a block relation with them."""
    followers = await ctx.store.relations.follower_ids(author_id)
    hidden = await ctx.store.relations.block_set(author_id)
    return [author_id, *(f for f in followers if f not in hidden and f != author_id)]


class NotificationConsumer:
    """like / comment / follow → a notification for the user it concerns."""

    def __init__(self, ctx: Context, publisher: Publisher, presenter: Presenter) -> None:
        self._ctx = ctx
        self._publisher = publisher
        self._presenter = presenter

    async def handle(self, event: DomainEvent) -> None:
        match event:
            case LikeCreated():
                await self._notify(
                    event, event.post_author_id, "like", event.user_id, event.post_id, None
                )
            case CommentCreated():
                await self._notify(
                    event,
                    event.post_author_id,
                    "comment",
                    event.author_id,
                    event.post_id,
                    event.comment_id,
                )
            case FollowCreated():
                await self._notify(
                    event, event.followed_id, "follow", event.follower_id, None, None
                )
            case NotificationsRead():
                await self._push_unread(event.user_id, key=str(event.event_id))
            case _:
                pass

    async def _notify(
        self,
        event: DomainEvent,
        user_id: int,
        kind: NotificationKind,
        actor_id: int,
        post_id: int | None,
        comment_id: int | None,
    ) -> None:
        if user_id == actor_id:
            return  # your own actions never notify you
        store = self._ctx.store
        if await store.relations.blocked_either_way(user_id, actor_id):
            return
        notification = Notification(
            id=event.event_id,
            user_id=user_id,
            kind=kind,
            actor_id=actor_id,
            post_id=post_id,
            comment_id=comment_id,
            created_at=event.at,
        )
        async with store.transaction():
            await store.notifications.add(notification)  # a replay writes nothing
        # Pushed on every delivery, not only the first: if an earlier attempt stored the
        # row but failed to publish, this one publishes; if it did publish, the key makes
        # this a no-op.
        views = await self._presenter.notifications([notification])
        if views:
            await self._publisher.publish(
                channel_names.notifications(user_id),
                "notification.created",
                views[0],
                key=str(event.event_id),
            )
        await self._push_unread(user_id, key=f"{event.event_id}:unread")

    async def _push_unread(self, user_id: int, *, key: str) -> None:
        count = await self._ctx.store.notifications.unread_count(user_id)
        await self._publisher.publish(
            channel_names.notifications(user_id),
            "notifications.unread",
            UnreadCount(count),
            key=key,
        )


class LiveConsumer:
    """Posts, likes and comments → the channels whose subscribers should see them."""

    def __init__(self, ctx: Context, publisher: Publisher, presenter: Presenter) -> None:
        self._ctx = ctx
        self._publisher = publisher
        self._presenter = presenter

    async def handle(self, event: DomainEvent) -> None:
        key = str(event.event_id)
        match event:
            case PostCreated():
                post = await self._ctx.store.posts.get(event.post_id)
                if post is None or post.deleted_at is not None:
                    return
                view = await self._presenter.post(post, None)
                await self._fan(event.author_id, "post.created", view, key)
            case PostDeleted():
                gone = PostGone(str(event.post_id))
                await self._fan(event.author_id, "post.deleted", gone, key)
            case LikeCreated() | LikeRemoved():
                kind = "post.liked" if isinstance(event, LikeCreated) else "post.unliked"
                data = PostLiked(str(event.post_id), str(event.user_id), event.like_count)
                await self._publisher.publish(
                    channel_names.post(event.post_id), kind, data, key=key
                )
            case CommentCreated():
                comment = await self._ctx.store.comments.get(event.comment_id)
                if comment is None:
                    return
                views = await self._presenter.comments([comment])
                if views:
                    await self._publisher.publish(
                        channel_names.post(event.post_id),
                        "comment.created",
                        CommentPosted(views[0], event.comment_count),
                        key=key,
                    )
            case FollowCreated():
                follower = await self._ctx.store.users.get(event.follower_id)
                if follower is not None:
                    await self._publisher.publish(
                        channel_names.user(event.followed_id),
                        "user.followed",
                        UserFollowed(str(event.followed_id), UserView.of(follower)),
                        key=key,
                    )
            case _:
                pass

    async def _fan(self, author_id: int, kind: str, data: object, key: str) -> None:
        channels = [channel_names.feed(u) for u in await _audience(self._ctx, author_id)]
        channels += [channel_names.user(author_id), channel_names.PUBLIC]
        await self._publisher.publish_many(channels, kind, data, key=key)


class FeedConsumer:
    """Posts → the followers' stored feeds (a no-op for the SQL pull store)."""

    def __init__(self, ctx: Context, feed: FeedStore) -> None:
        self._ctx = ctx
        self._feed = feed

    async def handle(self, event: DomainEvent) -> None:
        match event:
            case PostCreated():
                audience = await _audience(self._ctx, event.author_id)
                await self._feed.fan_out(event.post_id, event.author_id, audience)
            case PostDeleted():
                audience = await _audience(self._ctx, event.author_id)
                await self._feed.retract(event.post_id, event.author_id, audience)
            case BlockCreated() | FollowRemoved():
                pass  # read-time filtering covers these; rebuilds pick them up
            case _:
                pass
