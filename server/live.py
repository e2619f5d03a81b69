"""The live layer and the event path of one process, built from settings.

`channel_backend` picks where channel histories live; `build_relay` wires the outbox relay
to the consumer kinds (feed, notifications, live pushes) in the one order they run.
"""

from __future__ import annotations

from channels.backend import ChannelBackend
from channels.eventlog import OutboxRelay
from channels.memory import MemoryBackend
from domain.consumers import Consumer, FeedConsumer, LiveConsumer, NotificationConsumer
from server.container import Services
from server.settings import Settings


def channel_backend(settings: Settings) -> ChannelBackend:
    # Embedded: one process, memory histories (PLAZA_REDIS_URL is refused by the CLI
    # until the Redis backend exists, see docs/decisions/0003).
    del settings
    return MemoryBackend()


def build_relay(services: Services) -> OutboxRelay:
    """The outbox relay over every consumer kind. The feed goes first so that a live
    `post.created` push never reaches a client before its feed page can show the post."""
    ctx, publisher, presenter = services.ctx, services.publisher, services.presenter
    consumers: list[Consumer] = [
        FeedConsumer(ctx, services.storage.feed),
        NotificationConsumer(ctx, publisher, presenter),
        LiveConsumer(ctx, publisher, presenter),
    ]
    return OutboxRelay(services.storage.outbox_reader, consumers)
