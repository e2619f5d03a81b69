"""What clients see: the wire shapes of REST, WebSocket replies and live events, and the
`Presenter` that builds them from records (docs/protocol.md).

Ids are strings (64-bit ids lose precision as JavaScript numbers); times are RFC 3339 UTC.
No view carries a password hash or a token, and only `MeView` carries an email. Routes are
the server's business: the URL of a media file comes from the `MediaUrl` it supplies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal

import msgspec

from domain.models import Account, Comment, Media, Notification, Post, Relationship, SeenPost
from domain.ports import Store

MediaUrl = Callable[[int], str]
"""The URL clients fetch a media file from, by media id (supplied by the server)."""


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
    def of(cls, media: Media, url: MediaUrl) -> MediaView:
        return cls(
            id=str(media.id),
            content_type=media.content_type,
            width=media.width,
            height=media.height,
            size=media.size,
            url=url(media.id),
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


# --- live event payloads (the `data` of pushes that are not a REST shape) ------------------


class PostLiked(msgspec.Struct, frozen=True):
    """`post.liked` / `post.unliked`."""

    post_id: str
    user_id: str
    like_count: int


class PostGone(msgspec.Struct, frozen=True):
    """`post.deleted`."""

    post_id: str


class CommentPosted(msgspec.Struct, frozen=True):
    """`comment.created`: the comment and the post's new count."""

    comment: CommentView
    comment_count: int


class UserFollowed(msgspec.Struct, frozen=True):
    """`user.followed`."""

    user_id: str
    follower: UserView


def _opt(value: int | None) -> str | None:
    return None if value is None else str(value)


# --- building views from records --------------------------------------------------------------


class Presenter:
    """Turn records into views with batched look-ups: one query per kind, never one per row."""

    def __init__(self, store: Store, media_url: MediaUrl) -> None:
        self._store = store
        self.media_url = media_url

    def media(self, media: Media) -> MediaView:
        return MediaView.of(media, self.media_url)

    async def posts(
        self, posts: Sequence[Post], viewer_id: int | None, *, new: bool = False
    ) -> list[PostView]:
        """`new`: the posts were created by this very request, so nobody can have liked
        them yet and the look-up is skipped."""
        if not posts:
            return []
        authors = await self._store.users.get_many(sorted({p.author_id for p in posts}))
        media_ids = sorted({m for p in posts for m in p.media_ids})
        media = await self._store.media.get_many(media_ids) if media_ids else {}
        liked = (
            await self._store.likes.liked(viewer_id, [p.id for p in posts])
            if viewer_id is not None and not new
            else set()
        )
        return [
            self._post_view(p, author, media, p.id in liked)
            for p in posts
            # author row gone: nothing sensible to show
            if (author := authors.get(p.author_id)) is not None
        ]

    async def seen_posts(self, seen: Sequence[SeenPost]) -> list[PostView]:
        """Views of posts read with their context (`PostRepository.seen_by`): a query only
        for the pictures, when there are any."""
        media_ids = sorted({m for s in seen for m in s.post.media_ids})
        media = await self._store.media.get_many(media_ids) if media_ids else {}
        return [self._post_view(s.post, s.author, media, s.liked) for s in seen]

    def _post_view(
        self, p: Post, author: Account, media: dict[int, Media], liked: bool
    ) -> PostView:
        return PostView(
            id=str(p.id),
            author=UserView.of(author),
            content=p.content,
            media=[self.media(media[m]) for m in p.media_ids if m in media],
            like_count=p.like_count,
            comment_count=p.comment_count,
            liked_by_me=liked,
            created_at=p.created_at,
        )

    async def post(self, post: Post, viewer_id: int | None, *, new: bool = False) -> PostView:
        views = await self.posts([post], viewer_id, new=new)
        return views[0]

    async def users(self, user_ids: Sequence[int]) -> list[UserView]:
        accounts = await self._store.users.get_many(list(user_ids))
        return [UserView.of(accounts[u]) for u in user_ids if u in accounts]

    async def comments(self, comments: Sequence[Comment]) -> list[CommentView]:
        if not comments:
            return []
        authors = await self._store.users.get_many(sorted({c.author_id for c in comments}))
        return [CommentView.of(c, authors[c.author_id]) for c in comments if c.author_id in authors]

    async def comment(self, comment: Comment) -> CommentView:
        views = await self.comments([comment])
        return views[0]

    async def notifications(self, items: Sequence[Notification]) -> list[NotificationView]:
        if not items:
            return []
        actors = await self._store.users.get_many(sorted({n.actor_id for n in items}))
        return [
            NotificationView(
                id=str(n.id),
                kind=n.kind,
                actor=UserView.of(actors[n.actor_id]),
                post_id=_opt(n.post_id),
                comment_id=_opt(n.comment_id),
                read=n.read_at is not None,
                created_at=n.created_at,
            )
            for n in items
            if n.actor_id in actors
        ]
