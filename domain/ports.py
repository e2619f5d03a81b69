"""Ports: what the domain needs from the outside world, as Protocols.

storage/ implements the repositories, feed store, search and outbox; channels/ implements
the Publisher; server/ implements hashing, tokens and image processing. Domain unit tests
use fakes of these.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from domain.events import DomainEvent
from domain.models import (
    Account,
    Comment,
    DeadLetter,
    Edge,
    Media,
    Notification,
    OutboxEntry,
    Post,
    ProcessedImage,
    ProfileChanges,
    RefreshToken,
    Relationship,
    SeenPost,
)
from domain.pagination import PageRequest


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC now."""
        ...


class IdGenerator(Protocol):
    def next_id(self) -> int: ...


# --- repositories -------------------------------------------------------------------------


class UserRepository(Protocol):
    async def add(self, account: Account) -> None:
        """Raises Conflict(code='username_taken' | 'email_taken'); both compare
        case-insensitively."""
        ...

    async def get(self, user_id: int) -> Account | None: ...

    async def get_many(self, user_ids: Sequence[int]) -> dict[int, Account]: ...

    async def find_by_login(self, login: str) -> Account | None:
        """By email when the login holds '@', else by username; case-insensitive."""
        ...

    async def update_profile(self, user_id: int, changes: ProfileChanges) -> Account | None: ...

    async def set_password_hash(self, user_id: int, password_hash: str) -> None: ...

    async def bump_token_version(self, user_id: int) -> int: ...

    async def touch(self, user_id: int, at: datetime) -> None:
        """Record activity (feeds fan out only to recently active followers)."""
        ...

    async def honours(self, user_id: int, token_version: int, family_id: str) -> bool:
        """Whether an access token of that account, token version and login still holds:
        the account exists with that token_version (no logout everywhere, no password
        change since) and the login (refresh token family) was not logged out or found
        replayed. Every authenticated request asks, so it is one round trip."""
        ...


class RelationRepository(Protocol):
    """Follows and blocks. Edge ids are snowflakes minted by the caller (list cursors)."""

    async def follow(self, edge_id: int, follower_id: int, followed_id: int, at: datetime) -> bool:
        """True when created, False when it already existed."""
        ...

    async def unfollow(self, follower_id: int, followed_id: int) -> bool: ...

    async def block(self, edge_id: int, blocker_id: int, blocked_id: int, at: datetime) -> bool: ...

    async def unblock(self, blocker_id: int, blocked_id: int) -> bool: ...

    async def relationship(self, viewer_id: int, other_id: int) -> Relationship: ...

    async def blocked_either_way(self, a: int, b: int) -> bool: ...

    async def block_set(self, user_id: int) -> set[int]:
        """Users this user blocked or who blocked this user (read-time filtering)."""
        ...

    async def blocks_involving(self, user_ids: Sequence[int]) -> set[tuple[int, int]]:
        """Every (blocker, blocked) pair where either side is one of `user_ids`: a batch's
        block checks in one query."""
        ...

    async def followers(self, user_id: int, page: PageRequest) -> list[Edge]: ...

    async def following(self, user_id: int, page: PageRequest) -> list[Edge]: ...

    async def follower_ids(self, user_id: int) -> list[int]:
        """Every follower not in a block relation with the user either way (fan-out and
        live routing). A block ends the follows both ways, but a follow that raced it may
        not have seen it yet; one query answers both."""
        ...


class PostRepository(Protocol):
    async def add(self, post: Post) -> bool:
        """False when (author_id, idempotency_key) already exists: nothing written."""
        ...

    async def get(self, post_id: int) -> Post | None:
        """Deleted posts are returned with deleted_at set; callers hide them."""
        ...

    async def get_by_idempotency_key(self, author_id: int, key: str) -> Post | None: ...

    async def get_many(self, post_ids: Sequence[int]) -> dict[int, Post]:
        """Live (not deleted) posts only."""
        ...

    async def seen_by(self, post_ids: Sequence[int], viewer_id: int | None) -> dict[int, SeenPost]:
        """`get_many` with each post's author and whether `viewer_id` likes it (never,
        without a viewer), in one query: a feed page's whole read. Posts whose author row
        is gone are left out, as views leave them out."""
        ...

    async def soft_delete(self, post_id: int, at: datetime) -> bool: ...

    async def by_author(self, author_id: int, page: PageRequest) -> list[Post]:
        """Live posts of one author, newest first."""
        ...

    async def add_to_like_count(self, post_id: int, delta: int) -> int:
        """Atomic `like_count = like_count + delta`; returns the new count."""
        ...

    async def add_to_comment_count(self, post_id: int, delta: int) -> int: ...


class LikeRepository(Protocol):
    async def add(self, like_id: int, post_id: int, user_id: int, at: datetime) -> bool:
        """True when created; False when this user already liked this post."""
        ...

    async def remove(self, post_id: int, user_id: int) -> bool: ...

    async def liked(self, user_id: int, post_ids: Sequence[int]) -> set[int]: ...

    async def likers(self, post_id: int, page: PageRequest) -> list[Edge]: ...


class CommentRepository(Protocol):
    async def add(self, comment: Comment) -> None: ...

    async def get(self, comment_id: int) -> Comment | None: ...

    async def get_many(self, comment_ids: Sequence[int]) -> dict[int, Comment]: ...

    async def by_post(self, post_id: int, page: PageRequest) -> list[Comment]: ...


class NotificationRepository(Protocol):
    async def add(self, notification: Notification) -> bool:
        """False when a notification with this id exists (a replayed event)."""
        ...

    async def add_many(self, notifications: Sequence[Notification]) -> None:
        """`add` for a batch, in one statement; existing ids are left as they are."""
        ...

    async def page(self, user_id: int, page: PageRequest) -> list[Notification]: ...

    async def unread_count(self, user_id: int) -> int: ...

    async def unread_counts(self, user_ids: Sequence[int]) -> dict[int, int]:
        """`unread_count` of many users in one query (0s included)."""
        ...

    async def mark_read(self, user_id: int, up_to_id: int | None, at: datetime) -> int:
        """Mark unread ones (all, or with id <= up_to_id) read; returns how many."""
        ...


class MediaRepository(Protocol):
    async def add(self, media: Media) -> None: ...

    async def get(self, media_id: int) -> Media | None: ...

    async def get_many(self, media_ids: Sequence[int]) -> dict[int, Media]: ...


class RefreshTokenRepository(Protocol):
    async def add(self, token: RefreshToken) -> None: ...

    async def get(self, token_hash: str) -> RefreshToken | None: ...

    async def mark_rotated(self, token_hash: str, at: datetime) -> bool:
        """Atomically spend a token; False when it was already spent (reuse)."""
        ...

    async def revoke_family(self, family_id: str, at: datetime) -> None:
        """Log out that login (or answer its replayed refresh token): its access tokens
        stop working too (`UserRepository.honours`)."""
        ...

    async def revoke_user(self, user_id: int, at: datetime) -> None: ...


class Outbox(Protocol):
    async def append(self, events: Sequence[DomainEvent]) -> None:
        """Called inside the write's transaction."""
        ...


class OutboxReader(Protocol):
    """The event path's side of the outbox: the relay, the consumer kinds, the operator.

    An entry stays open until every consumer kind has processed it (the relay sees every
    kind's acknowledgement in the event log, then `complete`s it): the outbox, not the log,
    is the record. An entry relayed under an epoch the log no longer has (it lost its data)
    is pending again."""

    async def pending(self, epoch: str, limit: int) -> list[OutboxEntry]:
        """Open entries not relayed under `epoch`, in relay order (the order their
        transactions appended them)."""
        ...

    async def mark_relayed(self, outbox_ids: Sequence[int], epoch: str, at: datetime) -> None: ...

    async def complete(self, outbox_ids: Sequence[int], at: datetime) -> None:
        """Every consumer kind has processed these: they only wait to be purged."""
        ...

    async def dead_letter(self, letter: DeadLetter) -> None:
        """Record (or update) a dead letter; its kind moves on without it."""
        ...

    async def dead_letters(self, kind: str | None = None, limit: int = 100) -> list[DeadLetter]: ...

    async def replay(self, outbox_id: int, kind: str) -> bool:
        """Hand a dead letter back: the entry is open and pending again, so every kind sees
        it once more (the kinds that did it already are idempotent and change nothing).
        False if there is no such dead letter."""
        ...

    async def purge_completed(self, older_than: datetime) -> int:
        """Delete completed entries older than that, dead letters' entries excepted."""
        ...


class Leadership(Protocol):
    """Being the one process that does something for a database (the outbox relay)."""

    async def hold(self, *, on_notify: Callable[[], object] | None = None) -> bool:
        """Take or keep the role: False while another candidate has it. While holding it,
        `on_notify` is called whenever any process commits outbox entries (PostgreSQL
        NOTIFY), so the relay need not poll."""
        ...

    async def release(self) -> None: ...


class Store(Protocol):
    """All repositories plus one transaction boundary.

    Every repository call made inside `async with store.transaction():` belongs to that
    transaction (committed on exit, rolled back on an exception). The repositories are
    read-only properties: an implementation may hold them as plain attributes of its own
    (sub)types, and nothing outside the store replaces them."""

    @property
    def users(self) -> UserRepository: ...

    @property
    def relations(self) -> RelationRepository: ...

    @property
    def posts(self) -> PostRepository: ...

    @property
    def likes(self) -> LikeRepository: ...

    @property
    def comments(self) -> CommentRepository: ...

    @property
    def notifications(self) -> NotificationRepository: ...

    @property
    def media(self) -> MediaRepository: ...

    @property
    def refresh_tokens(self) -> RefreshTokenRepository: ...

    @property
    def outbox(self) -> Outbox: ...

    def transaction(self) -> AbstractAsyncContextManager[None]: ...


class FeedStore(Protocol):
    """The home feed: SQL pull (embedded) or Redis sorted sets with fan-out (a fleet).

    `page` reads; the rest are the feed consumer's writes, called once per event (and
    again on a replay: each is idempotent). The SQL pull store has nothing to write."""

    async def page(self, user_id: int, page: PageRequest) -> list[int]:
        """Post ids, newest first with `apply_page` semantics, by the user or by someone
        they follow at the time of the read (so never across a block: a block ends the
        follows both ways); may include deleted posts, which the caller drops."""
        ...

    async def post_created(self, post_id: int, author_id: int) -> None: ...

    async def post_deleted(self, post_id: int, author_id: int) -> None: ...

    async def follow_created(self, follow_id: int, follower_id: int, followed_id: int) -> None:
        """Bring the followee's recent posts into the follower's feed."""
        ...

    async def follow_removed(self, follower_id: int, followed_id: int) -> None:
        """Take the followee's posts out of the follower's feed."""
        ...

    async def block_created(self, blocker_id: int, blocked_id: int) -> None:
        """Take each side's posts out of the other's feed."""
        ...


class SearchIndex(Protocol):
    async def users(self, query: str, page: PageRequest) -> list[int]:
        """Ids of users whose username or display name matches, newest first."""
        ...

    async def posts(self, query: str, page: PageRequest) -> list[int]:
        """Ids of live posts matching every word, newest first."""
        ...


class BlobStore(Protocol):
    """Content-addressed bytes (media files)."""

    async def put(self, sha256: str, data: bytes) -> None: ...

    async def get(self, sha256: str) -> bytes | None: ...


# --- security and media (implemented in server/) ------------------------------------------


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool:
        """False on mismatch or an unreadable hash; never raises for those."""
        ...

    def needs_rehash(self, password_hash: str) -> bool: ...

    async def burn(self, password: str) -> None:
        """Verify against a dummy hash: unknown accounts cost as much as wrong passwords."""
        ...


class AccessClaims(Protocol):
    @property
    def user_id(self) -> int: ...

    @property
    def token_version(self) -> int: ...

    @property
    def session_id(self) -> str: ...

    @property
    def expires_at(self) -> datetime: ...


class AccessTokens(Protocol):
    ttl_seconds: int

    def issue(self, user_id: int, token_version: int, session_id: str) -> str: ...

    def verify(self, token: str) -> AccessClaims:
        """Raises Unauthorized(code='invalid_token') on any defect, expiry included."""
        ...


class ImageProcessor(Protocol):
    async def process(self, data: bytes) -> ProcessedImage:
        """Decode, check limits, strip metadata. Raises UnsupportedMedia, ValidationFailed
        or PayloadTooLarge."""
        ...


# --- live ------------------------------------------------------------------------------------


class Push(NamedTuple):
    """One event for one channel (see Publisher)."""

    channel: str
    event_type: str
    data: Any
    key: str


class Publisher(Protocol):
    """Live pushes. Channels are internal names (`feed:{user_id}`, `notifications:{user_id}`,
    `post:{id}`, `user:{id}`, `public`); `data` is a msgspec Struct or JSON-able value, sent
    as `{"type": event_type, "data": data}`. `key` makes a publish idempotent per channel:
    publishing the same key again (a consumer's retry or replay) pushes nothing twice."""

    async def publish(self, channel: str, event_type: str, data: Any, *, key: str) -> None: ...

    async def publish_many(
        self, channels: Sequence[str], event_type: str, data: Any, *, key: str
    ) -> None:
        """The same event on many channels (a post's fan-out): encoded once."""
        ...

    async def publish_online(
        self, channels: Sequence[str], event_type: str, data: Any, *, key: str
    ) -> None:
        """`publish_many` to the channels with a subscriber recently (followers' feeds):
        the others are skipped and their subscribers, when back, resume with
        `recovered: false` and refetch."""
        ...

    async def publish_each(self, pushes: Sequence[Push]) -> None:
        """Different events on their channels, in order, in as few round trips as the
        backend allows (a consumer's batch)."""
        ...


class SessionRevoker(Protocol):
    async def revoke_session(self, user_id: int, session_id: str) -> None:
        """Close live sockets authenticated by this login (logout: close code 4401)."""
        ...

    async def revoke_user(self, user_id: int) -> None:
        """Close every live socket of the user (logout everywhere, password change)."""
        ...
