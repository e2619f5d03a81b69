"""The Redis channel backend across instances and through Redis outages, on a private
redis-server that the tests kill, freeze and restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
import redis.asyncio as redis

from channels.backend import Position
from channels.redis_backend import RedisChannelBackend
from channels.redis_client import connect
from domain.errors import Unavailable
from tests.support.redis_server import PrivateRedis

pytestmark = pytest.mark.redis


@dataclass
class Instance:
    backend: RedisChannelBackend
    client: redis.Redis
    received: list[tuple[str, Position, bytes]] = field(default_factory=list)
    lost_channels: list[str] = field(default_factory=list)

    def deliver(self, channel: str, position: Position, payload: bytes) -> None:
        self.received.append((channel, position, payload))

    def lost(self, channel: str) -> None:
        self.lost_channels.append(channel)

    def payloads(self, channel: str) -> list[bytes]:
        return [b for c, _, b in self.received if c == channel]


MakeInstance = Callable[[str], Awaitable[Instance]]


@pytest.fixture
async def instance() -> AsyncIterator[MakeInstance]:
    made: list[Instance] = []

    async def make(url: str) -> Instance:
        client = connect(url)
        backend = RedisChannelBackend(client, pubsub_client=connect(url, retry=False), prefix="t:")
        inst = Instance(backend, client)
        await inst.backend.start(inst)
        made.append(inst)
        return inst

    yield make
    for inst in made:
        await inst.backend.stop()
        await inst.client.aclose()


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def publish_retrying(inst: Instance, channel: str, payload: bytes) -> Position:
    """What a consumer does: retry a publish until Redis takes it."""
    while True:
        try:
            return await inst.backend.publish(channel, payload, payload.decode())
        except Unavailable:
            await asyncio.sleep(0.1)


async def test_instances_share_channels(
    private_redis: PrivateRedis, instance: MakeInstance
) -> None:
    a, b = await instance(private_redis.url), await instance(private_redis.url)
    await a.backend.subscribe("user:1")
    position = await b.backend.publish("user:1", b'{"from":"b"}')
    await until(lambda: len(a.received) == 1)
    assert a.received == [("user:1", position, b'{"from":"b"}')]
    assert await b.backend.current("user:1") == await a.backend.current("user:1") == position


async def test_a_dropped_connection_catches_up_in_order_exactly_once(
    private_redis: PrivateRedis, instance: MakeInstance
) -> None:
    sub, pub = await instance(private_redis.url), await instance(private_redis.url)
    await sub.backend.subscribe("feed:1")
    admin = connect(private_redis.url)
    sent: list[bytes] = []
    for n in range(60):
        if n == 20:
            # Redis drops the subscriber's pub/sub connection (as when its output buffer
            # limit is hit): everything published meanwhile must still arrive.
            await admin.client_kill_filter(_type="pubsub")
        payload = b'{"n":%d}' % n
        await pub.backend.publish("feed:1", payload)
        sent.append(payload)
    await until(lambda: len(sub.payloads("feed:1")) >= 60)
    await asyncio.sleep(0.2)
    assert sub.payloads("feed:1") == sent
    assert sub.lost_channels == []
    assert sub.backend.reconnects >= 2
    await admin.aclose()


async def test_redis_restarted_empty_tells_subscribers_their_history_is_gone(
    private_redis: PrivateRedis, instance: MakeInstance
) -> None:
    sub, pub = await instance(private_redis.url), await instance(private_redis.url)
    await sub.backend.subscribe("feed:2")
    before = await pub.backend.publish("feed:2", b'{"n":1}')
    await until(lambda: len(sub.received) == 1)
    private_redis.restart_empty()
    await until(lambda: sub.lost_channels == ["feed:2"], timeout=15)
    # Live delivery resumes by itself, under a new epoch.
    after = await publish_retrying(pub, "feed:2", b'{"n":2}')
    assert after.epoch != before.epoch
    await until(lambda: len(sub.received) == 2)
    assert sub.received[-1] == ("feed:2", after, b'{"n":2}')
    # A resume from before the restart cannot be recovered.
    assert await pub.backend.history("feed:2", before) is None


async def test_a_frozen_redis_bounds_every_call_then_flows_again(
    private_redis: PrivateRedis, instance: MakeInstance
) -> None:
    sub, pub = await instance(private_redis.url), await instance(private_redis.url)
    await sub.backend.subscribe("post:3")
    await pub.backend.publish("post:3", b'{"n":0}')
    await until(lambda: len(sub.received) == 1)
    private_redis.freeze()
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable):
            await pub.backend.publish("post:3", b'{"n":1}', "k1")
        # One deadline plus one retry: bounded, not the length of the freeze.
        assert time.monotonic() - started < 8
    finally:
        private_redis.thaw()
    await publish_retrying(pub, "post:3", b'{"n":2}')
    await until(lambda: len(sub.received) >= 2, timeout=15)
    await asyncio.sleep(0.2)
    # The publish that timed out may or may not have landed; nothing arrives twice and
    # what arrives is in order.
    got = sub.payloads("post:3")
    assert got in ([b'{"n":0}', b'{"n":2}'], [b'{"n":0}', b'{"n":1}', b'{"n":2}'])
    assert sub.lost_channels == []
