"""A small world for domain tests: every service wired to in-memory fakes (see fakes.py)."""

from __future__ import annotations

from collections.abc import Sequence

from fakes import (
    FakeBlobStore,
    FakeClock,
    FakeFeedStore,
    FakeHasher,
    FakeImageProcessor,
    FakePublisher,
    FakeRevoker,
    FakeSearchIndex,
    FakeStore,
    FakeTokens,
    relay,
)

from domain.consumers import Consumer, FeedConsumer, LiveConsumer, NotificationConsumer
from domain.ids import SnowflakeIds
from domain.models import Account, Media
from domain.ports import OutboxReader
from domain.services.accounts import AccountService
from domain.services.auth import AuthService
from domain.services.base import Context
from domain.services.feed import FeedService
from domain.services.media import MediaService
from domain.services.notifications import NotificationService
from domain.services.posts import PostService
from domain.services.search import SearchService
from domain.services.social import SocialService
from domain.views import Presenter

REFRESH_TTL = 30 * 24 * 3600


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.store = FakeStore()
        self.ids = SnowflakeIds(node=1, now_ms=self.clock.now_ms)
        self.ctx = Context(store=self.store, clock=self.clock, ids=self.ids)
        self.hasher = FakeHasher()
        self.tokens = FakeTokens(self.clock)
        self.revoker = FakeRevoker()
        self.publisher = FakePublisher()
        self.feed_store = FakeFeedStore(self.store)
        self.search_index = FakeSearchIndex(self.store)
        self.blobs = FakeBlobStore()
        self.images = FakeImageProcessor()
        self.presenter = Presenter(self.store, lambda media_id: f"/media/{media_id}")
        self.outbox_reader: OutboxReader = self.store.outbox_reader  # the relay's side

        self.accounts = AccountService(self.ctx, self.hasher)
        self.auth = AuthService(
            self.ctx,
            self.hasher,
            self.tokens,
            refresh_ttl_seconds=REFRESH_TTL,
            revoker=self.revoker,
        )
        self.social = SocialService(self.ctx)
        self.posts = PostService(self.ctx)
        self.feed = FeedService(self.ctx, self.feed_store)
        self.notifications = NotificationService(self.ctx)
        self.search = SearchService(self.ctx, self.search_index)
        self.media = MediaService(self.ctx, self.blobs, self.images)

        self.notification_consumer = NotificationConsumer(self.ctx, self.publisher, self.presenter)
        self.live_consumer = LiveConsumer(self.ctx, self.publisher, self.presenter)
        self.feed_consumer = FeedConsumer(self.feed_store)
        self.consumers: list[Consumer] = [
            self.feed_consumer,
            self.notification_consumer,
            self.live_consumer,
        ]

    async def user(self, name: str, password: str = "correct horse") -> Account:
        self.clock.advance(1)
        return await self.accounts.register(name, f"{name}@example.com", password)

    async def users(self, *names: str) -> Sequence[Account]:
        return [await self.user(n) for n in names]

    async def upload(self, owner_id: int, w: int = 4, h: int = 3) -> Media:
        return await self.media.upload(owner_id, f"IMG{w}x{h};".encode() + b"pixels")

    async def relay(self, consumers: Sequence[Consumer] | None = None) -> int:
        """Deliver the pending outbox events (the relay's job in production)."""
        return await relay(
            self.store, self.consumers if consumers is None else consumers, at=self.clock.now()
        )
