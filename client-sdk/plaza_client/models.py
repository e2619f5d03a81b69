"""Typed REST shapes of the protocol (docs/protocol.md in the repository), decoded leniently.

Every model ignores fields it does not know (msgspec's default), so the server may add
fields without breaking deployed clients. Fields the protocol marks optional, or that a
server might reasonably send as null, default to None instead of failing the decode.
Ids are strings (64-bit ids lose precision as JSON numbers); times are aware datetimes
decoded from RFC 3339.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")

__all__ = [
    "Comment",
    "CommentCreated",
    "Me",
    "Media",
    "Notification",
    "Page",
    "Post",
    "Relationship",
    "TokenPair",
    "User",
    "decode",
]


class User(msgspec.Struct, frozen=True, kw_only=True):
    """A public profile: what anyone may see of a user (no email)."""

    id: str
    username: str
    display_name: str | None = None
    bio: str | None = None
    avatar_media_id: str | None = None
    created_at: datetime | None = None


class Me(User, frozen=True, kw_only=True):
    """Your own profile: a User plus your email. Only replies about yourself carry it
    (register, login, refresh, GET /users/me, a profile update, the live `auth` reply)."""

    email: str


class Media(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    content_type: str
    width: int | None = None
    height: int | None = None
    size: int | None = None
    # A path such as /api/v1/media/{id}; resolve it against the server's base URL.
    url: str | None = None
    created_at: datetime | None = None


class Post(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    author: User
    content: str
    media: list[Media] = msgspec.field(default_factory=list)
    like_count: int = 0
    comment_count: int = 0
    liked_by_me: bool = False
    created_at: datetime | None = None


class Comment(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    author: User
    content: str
    post_id: str | None = None
    created_at: datetime | None = None


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    # "like" | "comment" | "follow" today; a plain str so a new kind never breaks a decode.
    kind: str
    actor: User
    post_id: str | None = None
    comment_id: str | None = None
    read: bool = False
    created_at: datetime | None = None


class Relationship(msgspec.Struct, frozen=True, kw_only=True):
    user_id: str
    following: bool = False
    followed_by: bool = False
    blocking: bool = False
    blocked_by: bool = False


class TokenPair(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"  # noqa: S105 (the OAuth token type, not a secret)
    # Seconds the access token lives; used to refresh it shortly before it expires.
    expires_in: int | None = None
    user: Me | None = None


class CommentCreated(msgspec.Struct, frozen=True, kw_only=True):
    """`data` of a live `comment.created` event."""

    comment: Comment
    comment_count: int = 0


class Page(list[T], Generic[T]):
    """A list of items, newest first, plus the cursors to page on.

    `next` is the `max_id` of the next (older) page: taken from the Link header's
    rel="next" when the server sends one, else the last item's id. The server sends a
    Link header with every non-empty REST page, so there `next` is None only on an empty
    page (the end); on a WebSocket page it is `next_max_id`, None on a short last page.
    `prev` is the `min_id` of the newer page when the server gives one.
    """

    def __init__(
        self, items: list[T] | None = None, *, next: str | None = None, prev: str | None = None
    ) -> None:
        super().__init__(items or [])
        self.next = next
        self.prev = prev

    def __repr__(self) -> str:
        return f"Page({list.__repr__(self)}, next={self.next!r}, prev={self.prev!r})"


class _WirePage(msgspec.Struct, Generic[T], kw_only=True):
    """The WebSocket form of a page: {"items": [...], "next_max_id": ...}."""

    items: list[T]
    next_max_id: str | None = None
    prev_min_id: str | None = None


def decode(data: bytes | str, type_: type[T]) -> T:
    """Decode JSON into `type_`; raises msgspec.ValidationError on a shape mismatch."""
    return msgspec.json.decode(data, type=type_)


def convert(obj: Any, type_: type[T]) -> T:
    """Convert already-parsed JSON (dicts, lists, strings) into `type_`."""
    return msgspec.convert(obj, type=type_)


def page_from_ws(result: Any, item_type: type[T]) -> Page[T]:
    """A WebSocket `*.page` / `search` result as a Page."""
    wire = msgspec.convert(result, type=_WirePage[item_type])  # type: ignore[valid-type]
    return Page(list(wire.items), next=wire.next_max_id, prev=wire.prev_min_id)


def to_builtins(obj: Any) -> Any:
    """JSON-ready builtins of a model, a Page or a live event (for printing, logging)."""
    if isinstance(obj, Page):
        return [to_builtins(item) for item in obj]
    return msgspec.to_builtins(obj)
