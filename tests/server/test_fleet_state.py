"""Fleet-shared state against a private Redis that the tests kill: rate limits and socket
counts fall back to this instance when Redis is away, and come back to the shared ones."""

from __future__ import annotations

import asyncio

import pytest

from channels.redis_client import connect
from domain.errors import RateLimited
from server.fleet import ControlChannel, RedisLimiter, RedisSocketCounts
from server.ratelimit import RateLimiter
from server.ws.registry import LocalSocketCounts, SessionRegistry
from tests.support.redis_server import PrivateRedis

pytestmark = pytest.mark.redis


async def test_a_shared_limit_is_one_budget_and_falls_back_when_redis_is_gone(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    one, two = connect(private_redis.url), connect(private_redis.url)
    try:
        a = RedisLimiter(one, "t:", RateLimiter("write", 3))
        b = RedisLimiter(two, "t:", RateLimiter("write", 3))
        await a.hit("u1")
        await b.hit("u1")
        await a.hit("u1")
        with pytest.raises(RateLimited) as limited:
            await b.hit("u1")  # the fourth write, on the other instance
        assert 0 < limited.value.retry_after <= 20
        await b.hit("u2")  # keys are separate
        private_redis.kill()
        # Redis is gone: each instance's own bucket holds the line (a fresh one here).
        for _ in range(3):
            await a.hit("u1")
        with pytest.raises(RateLimited):
            await a.hit("u1")
        assert caplog.text.count("Redis unavailable") == 1  # once per outage, not per call
    finally:
        await one.aclose()
        await two.aclose()


async def test_socket_counts_are_shared_and_fall_back(private_redis: PrivateRedis) -> None:
    one, two = connect(private_redis.url), connect(private_redis.url)
    try:
        a, b = RedisSocketCounts(one, "t:", 2), RedisSocketCounts(two, "t:", 2)
        assert await a.add(7, "s1")
        assert await b.add(7, "s2")
        assert not await b.add(7, "s3")  # two sockets already, on two instances
        assert await a.add(7, "s1")  # the same socket again is not one more
        await a.remove(7, "s1")
        assert await b.add(7, "s3")
        await a.renew()
        private_redis.kill()
        assert await a.add(8, "x1") and await a.add(8, "x2")
        assert not await a.add(8, "x3")  # the local count, while Redis is away
    finally:
        await one.aclose()
        await two.aclose()


class Closing:
    def __init__(self, user_id: int, session_id: str) -> None:
        self.user_id = user_id
        self.session_id = session_id
        self.closed: list[int] = []

    async def close(self, code: int, reason: str, *, warn: bool = False) -> None:
        self.closed.append(code)


async def test_the_control_channel_reconnects_and_carries_logouts(
    private_redis: PrivateRedis,
) -> None:
    registry = SessionRegistry(LocalSocketCounts(10))
    session = Closing(5, "login-1")
    registry.track(session)
    assert await registry.add_user(session, 5)
    listener = ControlChannel(
        connect(private_redis.url), connect(private_redis.url, retry=False), "t:", registry
    )
    sender_client = connect(private_redis.url)
    sender = ControlChannel(
        sender_client,
        connect(private_redis.url, retry=False),
        "t:",
        SessionRegistry(LocalSocketCounts(10)),
    )
    await listener.start()
    try:
        await asyncio.wait_for(listener.listening.wait(), 5)
        private_redis.restart_empty()
        await asyncio.sleep(0.2)
        await asyncio.wait_for(listener.listening.wait(), 10)  # resubscribed by itself
        for _ in range(50):
            await sender.broadcast("revoke_session", 5, "login-1")
            if session.closed:
                break
            await asyncio.sleep(0.1)
        assert session.closed == [4401]
    finally:
        await listener.stop()
        await sender.stop()
        await sender_client.aclose()
