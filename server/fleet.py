"""What the instances of a fleet share in Redis: rate-limit buckets, per-user socket counts
and the control channel that closes a user's sockets on every instance at logout.

Each degrades to this instance alone when Redis is away (logged once per outage, and its
end): the limits fall back to local buckets and counts, and a logout that cannot be
broadcast still closes the sockets here (the revoked tokens fail everywhere anyway at the
next authentication, within one access-token lifetime).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
import uuid
from collections import defaultdict

import msgspec
import redis.asyncio as redis

from channels.redis_client import COMMAND_TIMEOUT_S, REDIS_ERRORS
from channels.tasks import cancel_and_wait
from server.ratelimit import RateLimiter
from server.ws.registry import LocalSocketCounts, SessionRegistry

__all__ = ["ControlChannel", "FleetRevoker", "RedisBreaker", "RedisLimiter", "RedisSocketCounts"]

log = logging.getLogger("plaza.fleet")

# Token bucket in one script, on Redis time (instances' clocks may disagree). KEYS: bucket.
# ARGV: rate per ms, burst, cost, ttl ms. -> {1, 0, 0} allowed | {0, ms to wait, ms to full}
_BUCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens = tonumber(redis.call('HGET', KEYS[1], 't') or burst)
local stamp = tonumber(redis.call('HGET', KEYS[1], 's') or now)
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 's', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if allowed == 1 then return {1, 0, 0} end
return {0, math.ceil((cost - tokens) / rate), math.ceil((burst - tokens) / rate)}
"""

# KEYS: the user's socket set (member -> expiry, Redis time ms). ARGV: socket, max, ttl ms.
_ADD_SOCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
"""

# A socket counts against its user this long after its instance last renewed it: an
# instance that dies frees its users' slots within a minute; renewals come every 20 s.
SOCKET_TTL_MS = 60_000
SOCKET_RENEW_S = 20.0


class _Outage:
    """Logs the first failure of an outage and its end, not every call in between."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._down = False

    def failed(self, error: BaseException) -> None:
        if not self._down:
            self._down = True
            log.warning("%s: Redis unavailable (%s); using this instance alone", self._what, error)

    def ok(self) -> None:
        if self._down:
            self._down = False
            log.warning("%s: Redis is back", self._what)


# After Redis fails a limiter call, every limiter of the instance uses its own buckets for
# this long before Redis is tried again: a frozen Redis costs one request its command
# timeout (with the client's retry, 4 s), not every request one per bucket it spends.
BREAKER_PAUSE_S = 5.0


class RedisBreaker:
    """Shared by an instance's limiters: whether Redis is worth asking right now."""

    def __init__(self, pause_s: float = BREAKER_PAUSE_S) -> None:
        self._pause_s = pause_s
        self._until = -math.inf

    def tripped(self) -> bool:
        return time.monotonic() < self._until

    def trip(self) -> None:
        self._until = time.monotonic() + self._pause_s


class RedisLimiter:
    """A rate limit shared by the fleet; this instance's own buckets while Redis is away.
    `bucket` names its keys (two buckets may share a message name, not their keys)."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        local: RateLimiter,
        *,
        bucket: str | None = None,
        breaker: RedisBreaker | None = None,
    ) -> None:
        self.name = local.name
        self._client = client
        self._key_prefix = f"{prefix}rl:{bucket or local.name}:"
        self._local = local
        self._script = client.register_script(_BUCKET)
        self._outage = _Outage(f"{local.name} rate limit")
        self._breaker = breaker or RedisBreaker()
        # A key idle long enough to refill completely needs no state at all.
        self._ttl_ms = max(1000, math.ceil(local.burst / local.rate_per_s * 1000))

    async def hit(self, key: str, cost: float = 1.0) -> None:
        if self._breaker.tripped():
            self._local.hit_now(key, cost)
            return
        try:
            allowed, wait_ms, full_ms = await self._script(
                keys=[self._key_prefix + key],
                args=[self._local.rate_per_s / 1000, self._local.burst, cost, self._ttl_ms],
            )
        except REDIS_ERRORS as error:
            self._breaker.trip()
            self._outage.failed(error)
            self._local.hit_now(key, cost)
            return
        self._outage.ok()
        if not int(allowed):
            raise self._local.refusal(int(wait_ms) / 1000, int(full_ms) / 1000)


class RedisSocketCounts:
    """Per-user socket counts shared by the fleet (this instance's alone while Redis is
    away). Sockets of this instance are renewed in Redis while they live."""

    def __init__(self, client: redis.Redis, prefix: str, max_per_user: int) -> None:
        self._client = client
        self._prefix = prefix
        self._max = max_per_user
        self._script = client.register_script(_ADD_SOCKET)
        self._local = LocalSocketCounts(max_per_user)
        self._mine: defaultdict[int, set[str]] = defaultdict(set)
        self._outage = _Outage("socket limit")
        self._task: asyncio.Task[None] | None = None

    def _key(self, user_id: int) -> str:
        return f"{self._prefix}sockets:{user_id}"

    async def add(self, user_id: int, socket_id: str) -> bool:
        try:
            ok = await self._script(
                keys=[self._key(user_id)], args=[socket_id, self._max, SOCKET_TTL_MS]
            )
        except REDIS_ERRORS as error:
            self._outage.failed(error)
            ok = await self._local.add(user_id, socket_id)
        else:
            self._outage.ok()
        if ok:
            self._mine[user_id].add(socket_id)
        return bool(int(ok))

    async def remove(self, user_id: int, socket_id: str) -> None:
        mine = self._mine.get(user_id)
        if mine is not None:
            mine.discard(socket_id)
            if not mine:
                del self._mine[user_id]
        await self._local.remove(user_id, socket_id)
        with contextlib.suppress(*REDIS_ERRORS):
            await self._client.zrem(self._key(user_id), socket_id)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._renew_forever())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(SOCKET_RENEW_S)
            try:
                await self.renew()
            except REDIS_ERRORS as error:
                self._outage.failed(error)

    async def renew(self) -> None:
        if not self._mine:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            expiry = (await self._client.time())[0] * 1000 + SOCKET_TTL_MS
            for user_id, sockets in self._mine.items():
                pipe.zadd(self._key(user_id), dict.fromkeys(sockets, expiry), xx=True)
                pipe.pexpire(self._key(user_id), SOCKET_TTL_MS)
            await pipe.execute()


class _Control(msgspec.Struct, frozen=True):
    op: str
    user_id: int
    session_id: str | None
    origin: str


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(_Control).decode


class ControlChannel:
    """Instance-to-instance messages (logout) on one Redis pub/sub channel; reconnects with
    backoff by itself."""

    def __init__(
        self,
        client: redis.Redis,
        pubsub_client: redis.Redis,
        prefix: str,
        registry: SessionRegistry,
    ) -> None:
        self._client = client
        self._pubsub_client = pubsub_client
        self._topic = f"{prefix}control"
        self._registry = registry
        self._origin = uuid.uuid4().hex
        self._task: asyncio.Task[None] | None = None
        self._outage = _Outage("logout broadcast")
        self.listening = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._listen_forever())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)
        with contextlib.suppress(Exception):
            await self._pubsub_client.aclose()

    async def broadcast(self, op: str, user_id: int, session_id: str | None) -> None:
        message = _encode(_Control(op, user_id, session_id, self._origin))
        try:
            await self._client.publish(self._topic, message)
        except REDIS_ERRORS as error:
            self._outage.failed(error)
        else:
            self._outage.ok()

    async def _listen_forever(self) -> None:
        delay = 0.1
        while True:
            pubsub = self._pubsub_client.pubsub(ignore_subscribe_messages=True)
            try:
                async with asyncio.timeout(COMMAND_TIMEOUT_S):
                    await pubsub.subscribe(self._topic)
                self.listening.set()
                delay = 0.1
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        await self._apply(_decode(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.listening.clear()
                self._outage.failed(error)
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))  # noqa: S311 (jitter)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(COMMAND_TIMEOUT_S):
                        await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _apply(self, message: _Control) -> None:
        if message.origin == self._origin:
            return  # applied locally already
        if message.op == "revoke_session" and message.session_id is not None:
            await self._registry.revoke_session(message.user_id, message.session_id)
        elif message.op == "revoke_user":
            await self._registry.revoke_user(message.user_id)


class FleetRevoker:
    """The domain's SessionRevoker for a fleet: closes the sockets here and tells every
    other instance to close theirs."""

    def __init__(self, registry: SessionRegistry, control: ControlChannel) -> None:
        self._registry = registry
        self._control = control

    async def revoke_session(self, user_id: int, session_id: str) -> None:
        # The others first: closing a stuck socket here may take its close timeout.
        await self._control.broadcast("revoke_session", user_id, session_id)
        await self._registry.revoke_session(user_id, session_id)

    async def revoke_user(self, user_id: int) -> None:
        await self._control.broadcast("revoke_user", user_id, None)
        await self._registry.revoke_user(user_id)
