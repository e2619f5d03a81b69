"""The live layer and the event path of one process, built from settings.

Embedded (no PLAZA_REDIS_URL): channel histories and the event log live in this process's
memory, and `plaza serve` runs the event worker in-process. A fleet: both live in Redis,
`plaza serve` processes hold sockets and `plaza worker` processes relay and consume.
"""

from __future__ import annotations

import os
import socket
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import redis.asyncio as redis

from channels.backend import ChannelBackend
from channels.eventlog import PARTITIONS, EventLog
from channels.memory import MemoryBackend
from channels.memory_log import MemoryEventLog
from channels.redis_backend import RedisChannelBackend
from channels.redis_client import connect
from channels.redis_log import RedisEventLog
from channels.workers import EventWorker
from domain.clock import SystemClock
from domain.consumers import (
    Consumer,
    FeedConsumer,
    Kind,
    LiveConsumer,
    NotificationConsumer,
)
from domain.ports import FeedStore
from server.container import Services, Sessions, local_sessions
from server.fleet import (
    ControlChannel,
    FleetRevoker,
    RedisBreaker,
    RedisLimiter,
    RedisSocketCounts,
)
from server.node_ids import NodeIdClaim
from server.ratelimit import RateLimits, local_limiters
from server.settings import Settings
from server.ws.registry import SessionRegistry
from storage.factory import Storage
from storage.redis_feed import RedisFeedStore, feed_limits


@dataclass
class LiveLayer:
    """Where this process's channels and event log live, and what to close at the end."""

    backend: ChannelBackend
    log: EventLog
    redis_client: redis.Redis | None = None
    _clients: list[redis.Redis] = field(default_factory=list)

    async def close(self) -> None:
        for client in self._clients:
            await client.aclose()


def live_layer(settings: Settings) -> LiveLayer:
    kinds = [str(kind) for kind in Kind]
    if settings.redis_url is None:
        return LiveLayer(MemoryBackend(), MemoryEventLog(PARTITIONS, kinds))
    prefix = settings.redis_prefix
    client = connect(settings.redis_url)
    backend = RedisChannelBackend(
        client, pubsub_client=connect(settings.redis_url, retry=False), prefix=prefix
    )
    log = RedisEventLog(client, PARTITIONS, kinds, prefix=prefix)
    return LiveLayer(backend, log, client, [client])


async def node_id(settings: Settings, layer: LiveLayer, stack: AsyncExitStack) -> int:
    """This process's snowflake node: pinned, 0 when embedded, or claimed in Redis."""
    if settings.node_id is not None:
        return settings.node_id
    if layer.redis_client is None:
        return 0
    claim = NodeIdClaim(layer.redis_client, settings.redis_prefix, worker_id())
    node = await claim.claim()
    stack.push_async_callback(claim.release)
    return node


async def fleet_sessions(settings: Settings, layer: LiveLayer, stack: AsyncExitStack) -> Sessions:
    """Sessions whose limits and logouts hold across the instances (Redis), or this
    process's own when embedded."""
    client = layer.redis_client
    if client is None or settings.redis_url is None:
        return local_sessions(settings)
    prefix = settings.redis_prefix
    counts = RedisSocketCounts(client, prefix, settings.ws_max_sockets_per_user)
    await counts.start()
    stack.push_async_callback(counts.stop)
    registry = SessionRegistry(counts)
    control = ControlChannel(client, connect(settings.redis_url, retry=False), prefix, registry)
    await control.start()
    stack.push_async_callback(control.stop)
    breaker = RedisBreaker()  # one for all buckets: a request spends several
    limits = RateLimits(
        **{
            bucket: RedisLimiter(client, prefix, local, bucket=bucket, breaker=breaker)
            for bucket, local in local_limiters(settings.rate_limits()).items()
        }
    )
    return Sessions(registry, FleetRevoker(registry, control), limits)


def feed_store(settings: Settings, storage: Storage, layer: LiveLayer) -> FeedStore:
    """Home feeds: pulled from SQL when embedded, precomputed in Redis in a fleet."""
    if layer.redis_client is None:
        return storage.feed
    limits = feed_limits(
        max_items=settings.feed_max_items,
        fanout_max_followers=settings.feed_fanout_max_followers,
        active_days=settings.feed_active_days,
        access_token_ttl_s=settings.access_token_ttl,
    )
    return RedisFeedStore(
        storage.db,
        layer.redis_client,
        prefix=settings.redis_prefix,
        limits=limits,
        now=SystemClock().now,
    )


def worker_id() -> str:
    """Unique per process of a fleet, readable in logs and in Redis."""
    return f"{socket.gethostname()}:{os.getpid()}"


def event_worker(services: Services, log: EventLog) -> EventWorker:
    """The relay candidate and one consumer group per kind, on `log`."""
    ctx, publisher, presenter = services.ctx, services.publisher, services.presenter
    consumers: dict[Kind, Consumer] = {
        Kind.FEED: FeedConsumer(services.feed_store),
        Kind.NOTIFICATIONS: NotificationConsumer(ctx, publisher, presenter),
        Kind.LIVE: LiveConsumer(ctx, publisher, presenter),
    }
    storage = services.storage
    return EventWorker(
        log,
        storage.outbox_reader,
        consumers,
        worker_id(),
        # Embedded, this process is the database's only writer (Storage.claim_exclusive)
        # and its commits wake the relay directly: the outbox's NOTIFY would wake it a
        # second time for every commit, to find nothing.
        leadership=storage.relay_leadership(listen=not services.settings.embedded),
    )
