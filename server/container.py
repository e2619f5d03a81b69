"""The services container: every domain service and adapter, built once per process.

REST controllers and WebSocket sessions share one instance (`app.state.services`, the
`services` dependency), so an action taken over either path runs the same code with the
same limits. `build_services` is the only place that chooses the implementations.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from channels.hub import Hub
from domain.clock import SystemClock
from domain.ids import SnowflakeIds
from domain.ports import AccessTokens, FeedStore, PasswordHasher, Publisher, SessionRevoker
from domain.services.accounts import AccountService
from domain.services.auth import AuthService
from domain.services.base import Context
from domain.services.feed import FeedService
from domain.services.lists import ListService
from domain.services.media import MediaService
from domain.services.notifications import NotificationService
from domain.services.posts import PostService
from domain.services.search import SearchService
from domain.services.social import SocialService
from domain.services.subscriptions import SubscriptionService
from domain.views import Presenter
from server.images import PillowImageProcessor
from server.ratelimit import RateLimits
from server.security.passwords import Argon2Hasher
from server.security.tokens import JwtAccessTokens
from server.settings import Settings
from server.ws.registry import LocalSocketCounts, SessionRegistry
from storage.blobs import FileBlobStore
from storage.factory import Storage

API_PREFIX = "/api/v1"

ReadinessCheck = Callable[[], Awaitable[object]]


def media_url(media_id: int) -> str:
    """Where clients fetch a media file: the route of server.controllers.media."""
    return f"{API_PREFIX}/media/{media_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    settings: Settings
    storage: Storage
    ctx: Context
    hasher: PasswordHasher
    tokens: AccessTokens
    limits: RateLimits
    presenter: Presenter
    accounts: AccountService
    auth: AuthService
    social: SocialService
    posts: PostService
    feed: FeedService
    # Where home feeds are read from and written to: the SQL pull, or Redis in a fleet.
    feed_store: FeedStore
    notifications: NotificationService
    search: SearchService
    media: MediaService
    lists: ListService
    subscriptions: SubscriptionService
    # The live layer of this process: local subscribers and their sockets.
    hub: Hub
    sessions: SessionRegistry
    publisher: Publisher
    # name -> async probe for GET /ready (database, Redis, ...); a probe raises when down.
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Sessions:
    """The live sessions of this process and what they share with the fleet."""

    registry: SessionRegistry
    # Closes a user's sockets at logout: here (embedded) or on every instance.
    revoker: SessionRevoker
    limits: RateLimits


def local_sessions(settings: Settings) -> Sessions:
    """Embedded: one process, nothing to share."""
    registry = SessionRegistry(LocalSocketCounts(settings.ws_max_sockets_per_user))
    return Sessions(registry, registry, local_limits(settings))


def local_limits(settings: Settings) -> RateLimits:
    return RateLimits.local(settings.rate_limits())


def build_services(
    settings: Settings,
    storage: Storage,
    hub: Hub,
    publisher: Publisher,
    *,
    node_id: int,
    sessions: Sessions | None = None,
    feed_store: FeedStore | None = None,
) -> Services:
    ctx = Context(store=storage.store, clock=SystemClock(), ids=SnowflakeIds(node_id))
    hasher = Argon2Hasher()
    tokens = JwtAccessTokens(
        settings.secret_key, settings.jwt_issuer, settings.jwt_audience, settings.access_token_ttl
    )
    sessions = sessions or local_sessions(settings)
    presenter = Presenter(storage.store, media_url)
    posts = PostService(ctx)
    social = SocialService(ctx)
    feed_store = feed_store or storage.feed
    blobs = FileBlobStore(settings.media_dir)
    feed = FeedService(ctx, feed_store)
    notifications = NotificationService(ctx)
    search = SearchService(ctx, storage.search)
    return Services(
        settings=settings,
        storage=storage,
        ctx=ctx,
        hasher=hasher,
        tokens=tokens,
        limits=sessions.limits,
        presenter=presenter,
        accounts=AccountService(ctx, hasher),
        auth=AuthService(
            ctx,
            hasher,
            tokens,
            refresh_ttl_seconds=settings.refresh_token_ttl,
            revoker=sessions.revoker,
        ),
        social=social,
        posts=posts,
        feed=feed,
        feed_store=feed_store,
        notifications=notifications,
        search=search,
        media=MediaService(
            ctx,
            blobs,
            PillowImageProcessor(settings.max_upload_bytes, settings.max_image_pixels),
        ),
        lists=ListService(
            presenter=presenter,
            posts=posts,
            social=social,
            feed=feed,
            notifications=notifications,
            search=search,
        ),
        subscriptions=SubscriptionService(ctx),
        hub=hub,
        sessions=sessions.registry,
        publisher=publisher,
        readiness={"media": blobs.check_writable},
    )
