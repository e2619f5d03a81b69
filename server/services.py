"""The services container: every domain service, built once from settings and storage.

REST controllers and the WebSocket endpoint share one instance (`app.state.services`), so
an action taken over either path runs the same code with the same limits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from domain.ids import SnowflakeIds
from domain.ports import (
    AccessTokens,
    BlobStore,
    FeedStore,
    ImageProcessor,
    OutboxReader,
    PasswordHasher,
    Publisher,
    SearchIndex,
    Store,
)
from domain.presenter import Presenter
from domain.services.accounts import AccountService
from domain.services.auth import AuthService
from domain.services.base import Context
from domain.services.media import MediaService
from domain.services.posts import PostService
from domain.services.reading import FeedService, NotificationService, SearchService
from domain.services.social import SocialService
from server.ratelimit import RateLimits
from server.settings import Settings


class StorageHandle(Protocol):
    """What `storage.factory.open_storage` returns, as far as the server needs it."""

    @property
    def store(self) -> Store: ...

    @property
    def outbox_reader(self) -> OutboxReader: ...

    @property
    def feed(self) -> FeedStore: ...

    @property
    def search(self) -> SearchIndex: ...

    async def ping(self) -> None:
        """Raises when the database cannot answer."""
        ...

    async def close(self) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class NullPublisher:
    """Drops live events: the REST-only app before the live layer is wired in. Nothing is
    lost, because the outbox (not the publisher) is the record of every write."""

    async def publish(self, channel: str, event_type: str, data: Any) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Security:
    """The server-side implementations of the domain's security and media ports."""

    hasher: PasswordHasher
    tokens: AccessTokens
    images: ImageProcessor
    blobs: BlobStore


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    settings: Settings
    storage: StorageHandle
    ctx: Context
    security: Security
    publisher: Publisher
    limits: RateLimits
    presenter: Presenter
    accounts: AccountService
    auth: AuthService
    social: SocialService
    posts: PostService
    feed: FeedService
    notifications: NotificationService
    search: SearchService
    media: MediaService
    # name -> async probe for GET /ready (database, Redis, ...); a probe raises when down.
    readiness: dict[str, Callable[[], Awaitable[object]]] = field(default_factory=dict)


def build_services(
    settings: Settings,
    storage: StorageHandle,
    security: Security,
    *,
    publisher: Publisher | None = None,
) -> Services:
    ctx = Context(store=storage.store, clock=SystemClock(), ids=SnowflakeIds(settings.node_id))
    return Services(
        settings=settings,
        storage=storage,
        ctx=ctx,
        security=security,
        publisher=publisher or NullPublisher(),
        limits=RateLimits.of(
            settings.rate_auth_per_ip_per_minute, settings.rate_writes_per_user_per_minute
        ),
        presenter=Presenter(storage.store),
        accounts=AccountService(ctx, security.hasher),
        auth=AuthService(
            ctx,
            security.hasher,
            security.tokens,
            refresh_ttl_seconds=settings.refresh_token_ttl,
        ),
        social=SocialService(ctx),
        posts=PostService(ctx),
        feed=FeedService(ctx, storage.feed),
        notifications=NotificationService(ctx),
        search=SearchService(ctx, storage.search),
        media=MediaService(ctx, security.blobs, security.images),
    )
