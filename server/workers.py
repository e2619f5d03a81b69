"""The live layer, plugged into the processes.

`live_addons(settings, workers=...)` returns the addons `plaza serve` mounts: the WebSocket
endpoint always, and with `workers` the outbox relay and the event-log consumers too (the
embedded single process). `run_worker(settings)` is `plaza worker`: relay and consumers
without a web server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from litestar.types import ControllerRouterHandler

from channels.backend import ChannelBackend
from channels.eventlog import OutboxRelay
from channels.hub import Hub
from channels.memory import MemoryBackend
from channels.publisher import ChannelPublisher
from domain.consumers import Consumer, FeedConsumer, LiveConsumer, NotificationConsumer
from server.app import Addon
from server.services import Services
from server.settings import Settings
from server.ws.actions import ActionServices
from server.ws.endpoint import make_ws_endpoint
from server.ws.registry import SessionRegistry
from server.ws.session import LiveContext


def _backend(settings: Settings) -> ChannelBackend:
    if settings.redis_url is not None:
        # The Redis streams backend is the next step (docs/decisions/0003); refuse to
        # pretend: a fleet on the memory backend would silently lose cross-process pushes.
        raise RuntimeError("PLAZA_REDIS_URL is set but the Redis channel backend is not built")
    return MemoryBackend()


def build_relay(services: Services, publisher: ChannelPublisher) -> OutboxRelay:
    ctx = services.ctx
    consumers: list[Consumer] = [
        FeedConsumer(ctx, services.storage.feed),
        NotificationConsumer(ctx, publisher),
        LiveConsumer(ctx, publisher),
    ]
    return OutboxRelay(services.storage.outbox_reader, consumers)


class LiveAddon:
    """WebSocket endpoint + hub (+ relay and consumers when this process runs workers)."""

    def __init__(self, settings: Settings, *, workers: bool) -> None:
        self._settings = settings
        self._workers = workers
        self._live: LiveContext | None = None
        self.relay: OutboxRelay | None = None
        self.route_handlers: Sequence[ControllerRouterHandler] = [
            make_ws_endpoint(self.live, frozenset(o.lower() for o in settings.allowed_origins))
        ]

    def live(self) -> LiveContext:
        if self._live is None:
            raise RuntimeError("the live layer is not running")
        return self._live

    @property
    def registry(self) -> SessionRegistry | None:
        return None if self._live is None else self._live.registry

    @asynccontextmanager
    async def running(self, services: Services) -> AsyncIterator[None]:
        settings = self._settings
        backend = _backend(settings)
        hub = Hub(backend)
        await hub.start()
        publisher = ChannelPublisher(backend)
        registry = SessionRegistry(settings.ws_max_sockets_per_user)
        services.auth.set_revoker(registry)
        self._live = LiveContext(
            ctx=services.ctx,
            auth=services.auth,
            actions=ActionServices(
                social=services.social,
                posts=services.posts,
                feed=services.feed,
                notifications=services.notifications,
                search=services.search,
                presenter=services.presenter,
                writes=services.limits.writes,
            ),
            hub=hub,
            registry=registry,
            max_subscriptions=settings.ws_max_subscriptions,
            send_queue_bytes=settings.ws_send_queue_bytes,
        )
        async with AsyncExitStack() as stack:
            stack.push_async_callback(hub.stop)
            stack.push_async_callback(registry.close_all)
            if self._workers:
                relay = self.relay = build_relay(services, publisher)
                store: Any = services.storage.store
                store.add_outbox_listener(relay.wake)
                stack.callback(store.remove_outbox_listener, relay.wake)
                relay.start()
                stack.push_async_callback(relay.stop)
            yield


def live_addons(settings: Settings, *, workers: bool) -> list[Addon]:
    return [LiveAddon(settings, workers=workers)]


async def run_worker(settings: Settings) -> None:
    """`plaza worker`: the relay and consumers without a web server."""
    from server.app import default_security, open_storage
    from server.services import build_services

    storage = await open_storage(settings, migrate=False)
    try:
        services = build_services(settings, storage, default_security(settings))
        relay = build_relay(services, ChannelPublisher(_backend(settings)))
        relay.start()
        await asyncio.Event().wait()  # until cancelled (SIGTERM / Ctrl-C)
    finally:
        await storage.close()
