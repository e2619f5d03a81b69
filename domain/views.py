"""Wire shapes shared by REST, WebSocket replies and live events (PROTOCOL.md).

Ids are strings (64-bit ids lose precision as JavaScript numbers); times are RFC 3339 UTC.
No view carries a password hash or a token, and only `MeView` carries an email.
"""

from __future__ import annotations

from datetime import datetime
from typing import Generic, Literal, TypeVar

import msgspec

from domain.models import Account, Comment, Media, Relationship


class UserView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    username: str
    display_name: str
    bio: str
    avatar_media_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, account: Account) -> UserView:
        return cls(
            id=str(account.id),
            username=account.username,
            display_name=account.display_name,
            bio=account.bio,
            avatar_media_id=_opt(account.avatar_media_id),
            created_at=account.created_at,
        )


class MeView(UserView, frozen=True, kw_only=True):
    email: str

    @classmethod
    def of_me(cls, account: Account) -> MeView:
        base = UserView.of(account)
        return cls(**{f: getattr(base, f) for f in base.__struct_fields__}, email=account.email)


class MediaView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    content_type: str
    width: int
    height: int
    size: int
    url: str
    created_at: datetime

    @classmethod
    def of(cls, media: Media) -> MediaView:
        return cls(
            id=str(media.id),
            content_type=media.content_type,
            width=media.width,
            height=media.height,
            size=media.size,
            url=f"/api/v1/media/{media.id}",
            created_at=media.created_at,
        )


class PostView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    author: UserView
    content: str
    media: list[MediaView]
    like_count: int
    comment_count: int
    liked_by_me: bool
    created_at: datetime


class CommentView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    post_id: str
    author: UserView
    content: str
    created_at: datetime

    @classmethod
    def of(cls, comment: Comment, author: Account) -> CommentView:
        return cls(
            id=str(comment.id),
            post_id=str(comment.post_id),
            author=UserView.of(author),
            content=comment.content,
            created_at=comment.created_at,
        )


class NotificationView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: Literal["like", "comment", "follow"]
    actor: UserView
    post_id: str | None
    comment_id: str | None
    read: bool
    created_at: datetime


class RelationshipView(msgspec.Struct, frozen=True, kw_only=True):
    user_id: str
    following: bool
    followed_by: bool
    blocking: bool

    @classmethod
    def of(cls, rel: Relationship) -> RelationshipView:
        return cls(
            user_id=str(rel.user_id),
            following=rel.following,
            followed_by=rel.followed_by,
            blocking=rel.blocking,
        )


class TokenPair(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    user: MeView


class UnreadCount(msgspec.Struct, frozen=True):
    count: int


T = TypeVar("T")


class Paged(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    """A page of items plus its cursors; REST turns it into a body + Link header, the
    WebSocket into {"items", "next_max_id"}. The cursors are the ids of the rows behind the
    items (a follow list pages by follow id, not user id)."""

    items: list[T]
    next_max_id: str | None
    prev_min_id: str | None


def _opt(value: int | None) -> str | None:
    return None if value is None else str(value)
