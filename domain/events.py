"""Domain events: what a write caused, recorded in the outbox in the write's transaction.

Every event has an `event_id` (a snowflake minted with the write) so consumers can be
idempotent under at-least-once delivery. Events carry ids and facts, not rendered views:
consumers hydrate what they push, so a replayed event never pushes stale text.
"""

from __future__ import annotations

from datetime import datetime

import msgspec


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    event_id: int
    at: datetime


class PostCreated(_Event, frozen=True, kw_only=True, tag="post.created"):
    post_id: int
    author_id: int


class PostDeleted(_Event, frozen=True, kw_only=True, tag="post.deleted"):
    post_id: int
    author_id: int


class LikeCreated(_Event, frozen=True, kw_only=True, tag="like.created"):
    post_id: int
    post_author_id: int
    user_id: int
    like_count: int


class LikeRemoved(_Event, frozen=True, kw_only=True, tag="like.removed"):
    post_id: int
    post_author_id: int
    user_id: int
    like_count: int


class CommentCreated(_Event, frozen=True, kw_only=True, tag="comment.created"):
    comment_id: int
    post_id: int
    post_author_id: int
    author_id: int
    comment_count: int


class FollowCreated(_Event, frozen=True, kw_only=True, tag="follow.created"):
    follower_id: int
    followed_id: int


class FollowRemoved(_Event, frozen=True, kw_only=True, tag="follow.removed"):
    follower_id: int
    followed_id: int


class BlockCreated(_Event, frozen=True, kw_only=True, tag="block.created"):
    blocker_id: int
    blocked_id: int


class NotificationsRead(_Event, frozen=True, kw_only=True, tag="notifications.read"):
    user_id: int


DomainEvent = (
    PostCreated
    | PostDeleted
    | LikeCreated
    | LikeRemoved
    | CommentCreated
    | FollowCreated
    | FollowRemoved
    | BlockCreated
    | NotificationsRead
)


def ordering_key(event: DomainEvent) -> int:
    """The entity whose events each consumer kind must apply in commit order. A post's
    creation and deletion are keyed by its author, so an author's posts reach the feeds in
    the order they were written and a deletion never overtakes its post; what happens to a
    post afterwards (likes, unlikes, comments) by the post, so a like never overtakes its
    unlike; relations and read marks by the acting user. Events of one key share a
    partition of the event log, which one worker consumes at a time."""
    match event:
        case PostCreated() | PostDeleted():
            return event.author_id
        case LikeCreated() | LikeRemoved() | CommentCreated():
            return event.post_id
        case FollowCreated() | FollowRemoved():
            return event.follower_id
        case BlockCreated():
            return event.blocker_id
        case NotificationsRead():
            return event.user_id


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(DomainEvent)


def encode_event(event: DomainEvent) -> bytes:
    return _encoder.encode(event)


def decode_event(data: bytes | str) -> DomainEvent:
    event: DomainEvent = _decoder.decode(data)
    return event
