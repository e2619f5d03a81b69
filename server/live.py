"""The live layer and the event path of one process, built from settings.

`channel_backend` and `event_log` pick where channel histories and the event log live
(this process's memory when embedded, Redis for a fleet); `event_worker` wires the relay
and one consumer group per consumer kind.
"""

from __future__ import annotations

import os
import socket

from channels.backend import ChannelBackend
from channels.eventlog import PARTITIONS, EventLog
from channels.memory import MemoryBackend
from channels.memory_log import MemoryEventLog
from channels.workers import EventWorker
from domain.consumers import (
    Consumer,
    FeedConsumer,
    Kind,
    LiveConsumer,
    NotificationConsumer,
)
from server.container import Services
from server.settings import Settings


def channel_backend(settings: Settings) -> ChannelBackend:
    del settings
    return MemoryBackend()


def event_log(settings: Settings) -> EventLog:
    del settings
    return MemoryEventLog(PARTITIONS, [str(kind) for kind in Kind])


def worker_id() -> str:
    """Unique per process of a fleet, readable in logs and in Redis."""
    return f"{socket.gethostname()}:{os.getpid()}"


def event_worker(services: Services, log: EventLog) -> EventWorker:
    ctx, publisher, presenter = services.ctx, services.publisher, services.presenter
    consumers: dict[Kind, Consumer] = {
        Kind.FEED: FeedConsumer(ctx, services.storage.feed),
        Kind.NOTIFICATIONS: NotificationConsumer(ctx, publisher, presenter),
        Kind.LIVE: LiveConsumer(ctx, publisher, presenter),
    }
    storage = services.storage
    return EventWorker(
        log,
        storage.outbox_reader,
        consumers,
        worker_id(),
        leadership=storage.relay_leadership(),
    )
