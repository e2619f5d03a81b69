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

from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol, cast

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
from domain.ports import FeedStore, Publisher, Push
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
    """The consumer kinds (each is one consumer group of the event log)."""

    FEED = "feed"
    NOTIFICATIONS = "notifications"
    LIVE = "live"


class Consumer(Protocol):
    """One consumer kind. `handle_batch` gets events in order (a partition's batch, one key's
    events in commit order) and applies them with as few round trips as it can; `handle` is
    one event (the same code)."""

    async def handle(self, event: DomainEvent) -> None: ...

    async def handle_batch(self, events: Sequence[DomainEvent]) -> None: ...


class _Batched:
    async def handle(self, event: DomainEvent) -> None:
        await self.handle_batch([event])

    async def handle_batch(self, events: Sequence[DomainEvent]) -> None:
        raise NotImplementedError


async def _audience(ctx: Context, author_id: int) -> list[int]:
    """The author and every follower not in a block relation with them."""
    followers = await ctx.store.relations.follower_ids(author_id)
    return [author_id, *(f for f in followers if f != author_id)]


def _notification_of(event: DomainEvent) -> Notification | None:
    """The notification an event asks for, if any (your own actions never notify you)."""
    post: int | None
    comment: int | None
    match event:
        case LikeCreated():
            user, kind, actor = event.post_author_id, "like", event.user_id
            post, comment = event.post_id, None
        case CommentCreated():
            user, kind, actor = event.post_author_id, "comment", event.author_id
            post, comment = event.post_id, event.comment_id
        case FollowCreated():
            user, kind, actor = event.followed_id, "follow", event.follower_id
            post, comment = None, None
        case _:
            return None
    if user == actor:
        return None
    return Notification(
        id=event.event_id,
        user_id=user,
        kind=cast(NotificationKind, kind),
        actor_id=actor,
        post_id=post,
        comment_id=comment,
        created_at=event.at,
    )


class NotificationConsumer(_Batched):
    """like / comment / follow → a notification for the user it concerns, its push and the
    new unread count; a read mark → the new unread count on the user's other devices."""

    def __init__(self, ctx: Context, publisher: Publisher, presenter: Presenter) -> None:
        self._ctx = ctx
        self._publisher = publisher
        self._presenter = presenter

    async def handle_batch(self, events: Sequence[DomainEvent]) -> None:
        store = self._ctx.store
        wanted = [n for n in map(_notification_of, events) if n is not None]
        blocks = await store.relations.blocks_involving(sorted({n.user_id for n in wanted}))
        notes = [
            n
            for n in wanted
            if (n.user_id, n.actor_id) not in blocks and (n.actor_id, n.user_id) not in blocks
        ]
        if notes:
            async with store.transaction():
                await store.notifications.add_many(notes)  # a replay writes nothing
        # Each user's unread count is pushed once, after the batch, keyed by the last event
        # that concerned them.
        last: dict[int, int] = {n.user_id: n.id for n in notes}
        for event in events:
            if isinstance(event, NotificationsRead):
                last[event.user_id] = event.event_id
        if not last:
            return
        views = {v.id: v for v in await self._presenter.notifications(notes)}
        counts = await store.notifications.unread_counts(list(last))
        # Pushed on every delivery, not only the first: if an earlier attempt stored the
        # rows but failed to publish, this one publishes; if it did, the keys make it a no-op.
        pushes = [
            Push(
                channel_names.notifications(n.user_id),
                "notification.created",
                views[str(n.id)],
                str(n.id),
            )
            for n in notes
            if str(n.id) in views
        ]
        pushes += [
            Push(
                channel_names.notifications(user_id),
                "notifications.unread",
                UnreadCount(counts.get(user_id, 0)),
                f"{event_id}:unread",
            )
            for user_id, event_id in last.items()
        ]
        await self._publisher.publish_each(pushes)


class LiveConsumer(_Batched):
    """Posts, likes, comments and follows → the channels whose subscribers should see them."""

    def __init__(self, ctx: Context, publisher: Publisher, presenter: Presenter) -> None:
        self._ctx = ctx
        self._publisher = publisher
        self._presenter = presenter

    async def handle_batch(self, events: Sequence[DomainEvent]) -> None:
        store = self._ctx.store
        # Everything the pushes show, read up front in one query per kind.
        created = [e.post_id for e in events if isinstance(e, PostCreated)]
        seen = await store.posts.seen_by(created, None) if created else {}
        post_views = {v.id: v for v in await self._presenter.seen_posts(list(seen.values()))}
        comment_ids = [e.comment_id for e in events if isinstance(e, CommentCreated)]
        comments = await store.comments.get_many(comment_ids) if comment_ids else {}
        comment_views = {v.id: v for v in await self._presenter.comments(list(comments.values()))}
        follower_ids = [e.follower_id for e in events if isinstance(e, FollowCreated)]
        followers = await store.users.get_many(follower_ids) if follower_ids else {}
        audiences: dict[int, list[str]] = {}

        async def followers_feeds(author_id: int) -> list[str]:
            if author_id not in audiences:
                audience = await _audience(self._ctx, author_id)
                audiences[author_id] = [channel_names.feed(u) for u in audience]
            return audiences[author_id]

        async def fan_out(author_id: int, kind: str, data: object, key: str) -> None:
            # Followers' feeds only where someone is online (the others refetch when
            # back); the author's profile channel and the public timeline always.
            feeds = await followers_feeds(author_id)
            await self._publisher.publish_online(feeds, kind, data, key=key)
            others = [channel_names.user(author_id), channel_names.PUBLIC]
            await self._publisher.publish_many(others, kind, data, key=key)

        # In event order: single pushes are gathered and sent before each fan-out, so no
        # channel ever sees two events of the batch swapped.
        singles: list[Push] = []
        for event in events:
            key = str(event.event_id)
            match event:
                case PostCreated():
                    view = post_views.get(str(event.post_id))
                    if view is None:
                        continue  # deleted since (or its author is gone): nothing to show
                    await self._flush(singles)
                    await fan_out(event.author_id, "post.created", view, key)
                case PostDeleted():
                    await self._flush(singles)
                    gone = PostGone(str(event.post_id))
                    await fan_out(event.author_id, "post.deleted", gone, key)
                case LikeCreated() | LikeRemoved():
                    kind = "post.liked" if isinstance(event, LikeCreated) else "post.unliked"
                    liked = PostLiked(str(event.post_id), str(event.user_id), event.like_count)
                    singles.append(Push(channel_names.post(event.post_id), kind, liked, key))
                case CommentCreated():
                    comment = comment_views.get(str(event.comment_id))
                    if comment is not None:
                        posted = CommentPosted(comment, event.comment_count)
                        channel = channel_names.post(event.post_id)
                        singles.append(Push(channel, "comment.created", posted, key))
                case FollowCreated():
                    follower = followers.get(event.follower_id)
                    if follower is not None:
                        followed = UserFollowed(str(event.followed_id), UserView.of(follower))
                        channel = channel_names.user(event.followed_id)
                        singles.append(Push(channel, "user.followed", followed, key))
                case _:
                    pass
        await self._flush(singles)

    async def _flush(self, singles: list[Push]) -> None:
        if singles:
            await self._publisher.publish_each(list(singles))
            singles.clear()


class FeedConsumer(_Batched):
    """Posts, follows and blocks → the stored feeds (a no-op for the SQL pull store)."""

    def __init__(self, feed: FeedStore) -> None:
        self._feed = feed

    async def handle_batch(self, events: Sequence[DomainEvent]) -> None:
        for event in events:
            match event:
                case PostCreated():
                    await self._feed.post_created(event.post_id, event.author_id)
                case PostDeleted():
                    await self._feed.post_deleted(event.post_id, event.author_id)
                case FollowCreated():
                    await self._feed.follow_created(
                        event.event_id, event.follower_id, event.followed_id
                    )
                case FollowRemoved():
                    await self._feed.follow_removed(event.follower_id, event.followed_id)
                case BlockCreated():
                    await self._feed.block_created(event.blocker_id, event.blocked_id)
                case _:
                    pass
