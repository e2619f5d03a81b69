"""Records of the domain: what the repositories store and return.

These carry integer ids and never leave the server as they are; `domain.views` holds the
wire shapes (string ids, no secrets).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

NotificationKind = Literal["like", "comment", "follow"]


class Account(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    username: str
    email: str
    password_hash: str
    display_name: str
    bio: str
    avatar_media_id: int | None
    created_at: datetime
    last_active_at: datetime
    # Bumped on password change and logout-everywhere: access tokens carry it, so every
    # token minted before the bump stops verifying at once.
    token_version: int


class ProfileChanges(msgspec.Struct, frozen=True, kw_only=True):
    """Fields a user may change on their own profile; UNSET means leave as is."""

    display_name: str | msgspec.UnsetType = msgspec.UNSET
    bio: str | msgspec.UnsetType = msgspec.UNSET
    avatar_media_id: int | msgspec.UnsetType | None = msgspec.UNSET


class Post(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    author_id: int
    content: str
    media_ids: tuple[int, ...]
    created_at: datetime
    deleted_at: datetime | None = None
    like_count: int = 0
    comment_count: int = 0
    idempotency_key: str | None = None


class SeenPost(msgspec.Struct, frozen=True, kw_only=True):
    """A live post with what one viewer's view of it needs: its author and whether the
    viewer likes it (a page of them is read in one query: `PostRepository.seen_by`)."""

    post: Post
    author: Account
    liked: bool


class Comment(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    post_id: int
    author_id: int
    content: str
    created_at: datetime


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    # The id is the id of the domain event that caused it: a consumer that sees the same
    # event twice (at-least-once delivery) writes the same row, not a second one.
    id: int
    user_id: int
    kind: NotificationKind
    actor_id: int
    post_id: int | None
    comment_id: int | None
    created_at: datetime
    read_at: datetime | None = None


class Media(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    owner_id: int
    content_type: str
    size: int
    width: int
    height: int
    sha256: str
    created_at: datetime


class RefreshToken(msgspec.Struct, frozen=True, kw_only=True):
    # Only the SHA-256 of the opaque token is stored: a leaked table mints nothing.
    token_hash: str
    user_id: int
    family_id: str
    created_at: datetime
    expires_at: datetime
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None


class Edge(msgspec.Struct, frozen=True):
    """One row of a follow or like list: its own id is the list cursor."""

    id: int
    user_id: int


class Relationship(msgspec.Struct, frozen=True, kw_only=True):
    user_id: int
    following: bool
    followed_by: bool
    blocking: bool
    blocked_by: bool


class ProcessedImage(msgspec.Struct, frozen=True, kw_only=True):
    content_type: str
    data: bytes
    width: int
    height: int


class OutboxEntry(msgspec.Struct, frozen=True):
    """One committed event waiting for the event log: its id, and the encoded event."""

    id: int
    event: bytes


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """An event one consumer kind gave up on after its attempts; kept for an operator to
    inspect and replay. The other kinds are not affected."""

    outbox_id: int
    kind: str
    attempts: int
    error: str
    failed_at: datetime
    event: bytes
