"""Redis channel backend: histories in Redis, live delivery by pub/sub, for a fleet.

The centrifuge model. Each channel has three keys: a meta hash (its epoch and last
offset), a capped history stream whose entry ids are the offsets, and a sorted set of the
idempotency keys of the events its history still holds. One server-side script appends
to the history and PUBLISHes the same event, atomically, so live order equals history
order; `publish_many` does a whole batch of channels in one call with the payload passed
once. Every instance SUBSCRIBEs once per channel that has local subscribers (the hub
above encodes each event once for all of them), and to one fan-out topic: a payload
published to many channels at once (a post to its author's followers' feeds) is one
message there naming each channel with its position, which each instance reads once and
hands to the channels it holds, instead of one message per channel.

The epoch lives in the meta hash: when the history is lost (Redis restarted or flushed,
or the channel idle past META_TTL_S) the next touch makes a new epoch, and a resume from
the old one answers "not recovered" — never a silent gap.

Outages: the pub/sub reader reconnects with backoff by itself, resubscribes, and catches
each local channel up from its history (what was published while it was cut off is
delivered, in order, once); a channel whose history is gone is reported `lost`, and its
subscribers are closed with 4000 so they resume and learn `recovered: false`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis
from redis.asyncio.client import PubSub

from channels.backend import ChannelBackend, Listener, Position
from channels.redis_client import COMMAND_TIMEOUT_S, REDIS_ERRORS
from channels.tasks import cancel_and_wait
from domain.errors import Unavailable

__all__ = ["HISTORY_SIZE", "HISTORY_TTL_S", "META_TTL_S", "RedisChannelBackend"]

log = logging.getLogger("plaza.channels.redis")

# 300 events per channel: a phone asleep for minutes on a busy feed still resumes, while
# 100k active channels stay near 100 MB of history in Redis.
HISTORY_SIZE = 300
# History is kept 15 minutes after a channel's last event: the resume window. Longer
# absences refetch over REST (`recovered: false`), which costs one request, not memory.
HISTORY_TTL_S = 15 * 60
# The epoch and last offset outlive the history by far, so a client resuming a quiet
# channel after an hour is told "nothing missed" instead of "refetch".
META_TTL_S = 7 * 24 * 3600
# Pub/sub reconnect backoff: first retry at once-ish, then doubling to a 5 s ceiling, with
# jitter so that a fleet does not reconnect in lockstep after a Redis restart.
RECONNECT_MIN_S = 0.1
RECONNECT_MAX_S = 5.0
# How long a subscribe waits for Redis to confirm the subscription.
CONFIRM_TIMEOUT_S = COMMAND_TIMEOUT_S
# A read of the pub/sub connection returns at least this often, so a frozen Redis is
# noticed by the health check (PING) instead of looking like a quiet one.
READ_TICK_S = 1.0
HEALTH_CHECK_S = 5.0
# A channel counts as online while an instance has had a local subscriber on it within
# this long: as long as the history window, so a subscriber away for less than that still
# gets every event and resumes exactly. Instances renew their channels' presence every
# PRESENCE_RENEW_S.
PRESENCE_TTL_S = HISTORY_TTL_S
PRESENCE_RENEW_S = 60.0

# One channel's publish: append to its capped history and PUBLISH the same entry, unless
# its idempotency key was published already (then that first position is the answer).
# A fan-out (one payload, several channels; ARGV[6] names the batch topic) PUBLISHes once
# for all its channels instead: "topic offset epoch ..." for each, a newline, the payload.
_PUBLISH_ONE = """
local batch_topic = ARGV[6]
local batch = false
if batch_topic ~= '' then batch = {} end
local function publish_one(meta, hist, keys, payload, key, topic, size, hist_ttl, meta_ttl,
                           new_epoch)
  local epoch = redis.call('HGET', meta, 'e')
  if not epoch then
    epoch = new_epoch
    redis.call('DEL', hist, keys)
    redis.call('HSET', meta, 'e', epoch, 'o', 0)
  end
  local offset = false
  if key ~= '' then offset = redis.call('ZSCORE', keys, key) end
  if not offset then
    offset = redis.call('HINCRBY', meta, 'o', 1)
    redis.call('XADD', hist, 'MAXLEN', size, offset .. '-0', 'd', payload)
    redis.call('EXPIRE', hist, hist_ttl)
    if key ~= '' then
      redis.call('ZADD', keys, offset, key)
      redis.call('ZREMRANGEBYRANK', keys, 0, -(size + 1))
      redis.call('EXPIRE', keys, hist_ttl)
    end
    if batch then
      batch[#batch + 1] = topic .. ' ' .. offset .. ' ' .. epoch
    else
      redis.call('PUBLISH', topic, offset .. ' ' .. epoch .. ' ' .. payload)
    end
  end
  redis.call('EXPIRE', meta, meta_ttl)
  return {tostring(offset), epoch}
end
local size, hist_ttl, meta_ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local base = 6 + tonumber(ARGV[5])
local function publish_batch()
  if batch and #batch > 0 then
    redis.call('PUBLISH', batch_topic, table.concat(batch, ' ') .. '\\n' .. ARGV[7])
  end
end
"""

# KEYS: (meta, history, keys) per channel. ARGV: history size, history TTL, meta TTL, new
# epoch, the number of distinct payloads, the batch topic ('' = a PUBLISH per channel) and
# the payloads (a fan-out passes one), then per channel: its payload's index, its key
# ('' = none) and its pub/sub channel name.
_PUBLISH = (
    _PUBLISH_ONE
    + """
local out = {}
for i = 1, #KEYS / 3 do
  local payload = ARGV[6 + tonumber(ARGV[base + 3 * i - 2])]
  out[i] = publish_one(KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i], payload,
    ARGV[base + 3 * i - 1], ARGV[base + 3 * i], size, hist_ttl, meta_ttl, ARGV[4])
end
publish_batch()
return out
"""
)

# As _PUBLISH, with a fourth key per channel, its presence: a channel nobody has
# subscribed to for PRESENCE_TTL_S is skipped, and its position is forgotten once (a new
# epoch follows), so that a subscriber coming back after a skipped event is told
# `recovered: false` and refetches instead of being told it missed nothing.
_PUBLISH_ONLINE = (
    _PUBLISH_ONE
    + """
local out = {}
for i = 1, #KEYS / 4 do
  local meta, hist, keys = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1]
  if redis.call('EXISTS', KEYS[4 * i]) == 1 then
    local payload = ARGV[6 + tonumber(ARGV[base + 3 * i - 2])]
    out[i] = publish_one(meta, hist, keys, payload, ARGV[base + 3 * i - 1],
      ARGV[base + 3 * i], size, hist_ttl, meta_ttl, ARGV[4])
  else
    redis.call('DEL', meta, hist, keys)
    out[i] = {'', ''}
  end
end
publish_batch()
return out
"""
)

# KEYS: meta, history. ARGV: since offset, since epoch. -> {0} not recoverable, {1, entries}
_HISTORY = """
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch or epoch ~= ARGV[2] then return {0} end
local top = tonumber(redis.call('HGET', KEYS[1], 'o') or '0')
local since = tonumber(ARGV[1])
if since > top then return {0} end
if since == top then return {1, {}} end
local entries = redis.call('XRANGE', KEYS[2], '(' .. since .. '-0', '+')
if #entries == 0 or entries[1][1] ~= (since + 1) .. '-0' then return {0} end
return {1, entries}
"""

# KEYS: meta, history, keys. ARGV: new epoch, meta TTL. -> {offset, epoch}
_CURRENT = """
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {redis.call('HGET', KEYS[1], 'o'), epoch}
"""


def _new_epoch() -> str:
    # 48 random bits: two lives of one channel never share an epoch.
    return secrets.token_hex(6)


class RedisChannelBackend(ChannelBackend):
    def __init__(
        self,
        client: redis.Redis,
        *,
        pubsub_client: redis.Redis,
        prefix: str = "plaza:",
        history_size: int = HISTORY_SIZE,
        history_ttl_s: int = HISTORY_TTL_S,
        meta_ttl_s: int = META_TTL_S,
    ) -> None:
        if history_size < 1:
            raise ValueError("history_size must be positive")
        self._client = client
        # Pub/sub gets a client of its own (the backend owns and closes it) that never
        # retries: a dropped subscription must surface here, to be caught up, not be
        # silently re-made by redis-py.
        self._pubsub_client = pubsub_client
        self._prefix = prefix
        # Where fan-outs are published: one message for all their channels, which every
        # instance reads (outside the ps: names, so no channel's topic can be it).
        self._batch_topic = f"{prefix}ps-batch"
        self._batch_topic_bytes = self._batch_topic.encode()
        self._history_size = history_size
        self._history_ttl = history_ttl_s
        self._meta_ttl = meta_ttl_s
        self._publish = client.register_script(_PUBLISH)
        self._publish_online = client.register_script(_PUBLISH_ONLINE)
        self._presence: asyncio.Task[None] | None = None
        self._history = client.register_script(_HISTORY)
        self._current = client.register_script(_CURRENT)
        self._listener: Listener | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pubsub: PubSub | None = None
        self._connected = asyncio.Event()
        # Channels with local subscribers, and the last position delivered for each.
        self._last: dict[str, tuple[int, str]] = {}
        # The same channels by their pub/sub topic, as a fan-out message names them.
        self._by_topic: dict[bytes, str] = {}
        self._confirm: dict[bytes, asyncio.Future[None]] = {}
        self.reconnects = 0  # pub/sub reconnections since start (tests, metrics)

    # --- keys -------------------------------------------------------------------------------

    def _keys(self, channel: str) -> list[str]:
        base = f"{self._prefix}ch:{{{channel}}}"
        return [f"{base}:m", f"{base}:h", f"{base}:k"]

    def _presence_key(self, channel: str) -> str:
        return f"{self._prefix}ch:{{{channel}}}:p"

    def _topic(self, channel: str) -> str:
        return f"{self._prefix}ps:{channel}"

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self, listener: Listener) -> None:
        if self._reader is not None:
            raise RuntimeError("backend already started")
        self._listener = listener
        self._reader = asyncio.create_task(self._read_forever(), name="redis-channels")
        self._presence = asyncio.create_task(self._renew_presence(), name="redis-presence")

    async def stop(self) -> None:
        for task in (self._reader, self._presence):
            if task is not None:
                await cancel_and_wait(task)
        self._reader = self._presence = None
        await self._close_pubsub()
        with contextlib.suppress(Exception):
            await self._pubsub_client.aclose()

    # --- publishing and history ---------------------------------------------------------------

    async def publish(self, channel: str, payload: bytes, key: str | None = None) -> Position:
        [position] = await self.publish_many([channel], payload, key)
        return position

    async def publish_many(
        self, channels: Sequence[str], payload: bytes, key: str | None = None
    ) -> list[Position]:
        return await self._run_publish([payload], [(c, 0, key) for c in channels])

    async def publish_each(self, items: Sequence[tuple[str, bytes, str | None]]) -> list[Position]:
        payloads: list[bytes] = []
        index: dict[int, int] = {}  # by identity: a payload shared by items is sent once
        routed: list[tuple[str, int, str | None]] = []
        for channel, payload, key in items:
            n = index.setdefault(id(payload), len(payloads))
            if n == len(payloads):
                payloads.append(payload)
            routed.append((channel, n, key))
        return await self._run_publish(payloads, routed)

    async def publish_online(
        self, channels: Sequence[str], payload: bytes, key: str | None = None
    ) -> list[Position | None]:
        """`publish_many` to the channels that are online (see PRESENCE_TTL_S); None for
        each channel skipped."""
        routed = [(c, 0, key) for c in channels]
        positions = await self._run_publish([payload], routed, online_only=True)
        return [p if p.offset else None for p in positions]

    async def _run_publish(
        self,
        payloads: list[bytes],
        routed: list[tuple[str, int, str | None]],
        *,
        online_only: bool = False,
    ) -> list[Position]:
        if not routed:
            return []
        if online_only:
            keys = [
                k
                for channel, _, _ in routed
                for k in (*self._keys(channel), self._presence_key(channel))
            ]
        else:
            keys = [k for channel, _, _ in routed for k in self._keys(channel)]
        # One payload to several channels (a post to followers' feeds): one PUBLISH for all
        # of them, so each instance reads one message per fan-out instead of one per
        # channel (redis-py's per-message read path was most of an instance's CPU per
        # delivered event). Several payloads keep a PUBLISH per channel, in order.
        batched = len(payloads) == 1 and len(routed) > 1
        args: list[Any] = [
            self._history_size,
            self._history_ttl,
            self._meta_ttl,
            _new_epoch(),
            len(payloads),
            self._batch_topic if batched else "",
            *payloads,
        ]
        for channel, n, key in routed:
            args.extend((n + 1, key or "", self._topic(channel)))
        script = self._publish_online if online_only else self._publish
        try:
            result = await script(keys=keys, args=args)
        except REDIS_ERRORS as error:
            raise Unavailable(f"live channels are unavailable: {error}") from error
        return [Position(_text(offset), _text(epoch)) for offset, epoch in result]

    async def history(self, channel: str, since: Position) -> list[tuple[Position, bytes]] | None:
        key = self.offset_key(since.offset)
        if key is None or len(key) != 1:
            return None
        meta, hist, _ = self._keys(channel)
        try:
            result = await self._history(keys=[meta, hist], args=[key[0], since.epoch])
        except REDIS_ERRORS as error:
            raise Unavailable(f"live channels are unavailable: {error}") from error
        if not result or int(result[0]) != 1:
            return None
        entries = result[1] if len(result) > 1 else []
        return [
            (Position(_text(entry_id).removesuffix("-0"), since.epoch), _field(fields, b"d"))
            for entry_id, fields in entries
        ]

    async def current(self, channel: str) -> Position:
        try:
            offset, epoch = await self._current(
                keys=self._keys(channel), args=[_new_epoch(), self._meta_ttl]
            )
        except REDIS_ERRORS as error:
            raise Unavailable(f"live channels are unavailable: {error}") from error
        return Position(_text(offset), _text(epoch))

    # --- subscriptions ----------------------------------------------------------------------

    async def subscribe(self, channel: str) -> None:
        if channel in self._last:
            return
        self._last[channel] = (0, "")
        self._by_topic[self._topic(channel).encode()] = channel
        try:
            await self._subscribe_topic(channel)
            await self._mark_online([channel])
            position = await self.current(channel)
        except BaseException:
            self._forget(channel)
            raise
        self._raise_floor(channel, int(position.offset), position.epoch)

    def _forget(self, channel: str) -> bool:
        self._by_topic.pop(self._topic(channel).encode(), None)
        return self._last.pop(channel, None) is not None

    async def unsubscribe(self, channel: str) -> None:
        if not self._forget(channel):
            return
        pubsub = self._pubsub
        if pubsub is not None and self._connected.is_set():
            with contextlib.suppress(*REDIS_ERRORS):
                async with asyncio.timeout(COMMAND_TIMEOUT_S):
                    await pubsub.unsubscribe(self._topic(channel))

    async def _mark_online(self, channels: Sequence[str]) -> None:
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for channel in channels:
                    pipe.set(self._presence_key(channel), b"1", ex=PRESENCE_TTL_S)
                await pipe.execute()
        except REDIS_ERRORS as error:
            raise Unavailable(f"live channels are unavailable: {error}") from error

    async def _renew_presence(self) -> None:
        while True:
            await asyncio.sleep(PRESENCE_RENEW_S)
            channels = list(self._last)
            try:
                for start in range(0, len(channels), 1000):
                    await self._mark_online(channels[start : start + 1000])
            except Unavailable as error:  # Redis is away: the next round tries again
                log.debug("presence not renewed: %s", error)

    async def _subscribe_topic(self, channel: str) -> None:
        """SUBSCRIBE and wait until Redis confirms it: only then is every later publish
        sure to reach us (a position read after this is a safe starting point)."""
        try:
            async with asyncio.timeout(CONFIRM_TIMEOUT_S):
                await self._connected.wait()
        except TimeoutError:
            raise Unavailable("live channels are unavailable: Redis is unreachable") from None
        pubsub = self._pubsub
        assert pubsub is not None
        topic = self._topic(channel).encode()
        confirmed = self._confirm[topic] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT_S):
                await pubsub.subscribe(topic)
            async with asyncio.timeout(CONFIRM_TIMEOUT_S):
                await confirmed
        except REDIS_ERRORS as error:  # TimeoutError included
            raise Unavailable(f"live channels are unavailable: {error}") from error
        finally:
            self._confirm.pop(topic, None)

    def _raise_floor(self, channel: str, offset: int, epoch: str) -> None:
        last = self._last.get(channel)
        if last is None:
            return
        if last[1] != epoch or offset > last[0]:
            self._last[channel] = (offset, epoch)

    # --- the reader -------------------------------------------------------------------------

    async def _read_forever(self) -> None:
        delay = RECONNECT_MIN_S
        while True:
            try:
                await self._connect()
                delay = RECONNECT_MIN_S
                await self._read()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if self._connected.is_set() or self.reconnects == 0:
                    log.warning("Redis pub/sub connection lost (%s); reconnecting", error)
                self._connected.clear()
                for waiter in self._confirm.values():
                    if not waiter.done():
                        waiter.set_exception(ConnectionError("pub/sub connection lost"))
                await self._close_pubsub()
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))  # noqa: S311 (jitter)
                delay = min(delay * 2, RECONNECT_MAX_S)

    async def _connect(self) -> None:
        pubsub = self._pubsub_client.pubsub()
        # A fresh connection every time: subscriptions are replayed by us, below, in
        # order with the catch-up, not by redis-py behind our back.
        self._pubsub = pubsub
        channels = list(self._last)
        # The fan-out topic first, on the same connection as the channels' own topics:
        # Redis delivers one connection's messages in publish order, whichever topic.
        topics = [self._batch_topic, *(self._topic(c) for c in channels)]
        async with asyncio.timeout(COMMAND_TIMEOUT_S):
            await pubsub.subscribe(*topics)
        # Wait for the confirmations, keeping any message that arrives between them.
        early: list[dict[str, Any]] = []
        awaiting = {topic.encode() for topic in topics}
        while awaiting:
            message = await pubsub.get_message(timeout=COMMAND_TIMEOUT_S)
            if message is None:
                raise TimeoutError("no subscribe confirmation from Redis")
            if message["type"] == "subscribe":
                awaiting.discard(message["channel"])
            else:
                early.append(message)
        if self.reconnects or channels:
            await self._catch_up(channels)
        self.reconnects += 1
        self._connected.set()
        for message in early:
            self._on_message(message)

    async def _catch_up(self, channels: list[str]) -> None:
        """Deliver what each channel got while we were cut off, or report it lost."""
        listener = self._listener
        assert listener is not None
        for channel in channels:
            last = self._last.get(channel)
            if last is None:
                continue  # unsubscribed meanwhile
            offset, epoch = last
            if not epoch:
                continue  # still subscribing: its subscriber reads its own starting point
            missed = await self.history(channel, Position(str(offset), epoch))
            if missed is None:
                log.warning("history of %s was lost while disconnected", channel)
                listener.lost(channel)
                position = await self.current(channel)
                self._raise_floor(channel, int(position.offset), position.epoch)
                continue
            for position, payload in missed:
                self._last[channel] = (int(position.offset), position.epoch)
                listener.deliver(channel, position, payload)

    async def _read(self) -> None:
        pubsub = self._pubsub
        assert pubsub is not None
        loop = asyncio.get_running_loop()
        next_check = loop.time() + HEALTH_CHECK_S
        while True:
            message = await pubsub.get_message(timeout=READ_TICK_S)
            if message is not None:
                self._on_message(message)
                if message["type"] != "pong":
                    next_check = loop.time() + HEALTH_CHECK_S
            if loop.time() >= next_check:
                # Quiet for a while: make sure Redis is there (a frozen Redis keeps the
                # socket open but answers nothing; the pong must come back in time).
                async with asyncio.timeout(COMMAND_TIMEOUT_S):
                    await pubsub.ping()
                pong = await pubsub.get_message(timeout=COMMAND_TIMEOUT_S)
                while pong is not None and pong["type"] != "pong":
                    self._on_message(pong)
                    pong = await pubsub.get_message(timeout=COMMAND_TIMEOUT_S)
                if pong is None:
                    raise TimeoutError("Redis did not answer a PING")
                next_check = loop.time() + HEALTH_CHECK_S

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "subscribe":
            waiter = self._confirm.get(message["channel"])
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            return
        if kind != "message":
            return
        topic, data = message["channel"], bytes(message["data"])
        channel = self._by_topic.get(topic)
        if channel is not None:
            raw_offset, raw_epoch, payload = data.split(b" ", 2)
            self._on_event(channel, raw_offset, raw_epoch, payload)
        elif topic == self._batch_topic_bytes:
            header, payload = data.split(b"\n", 1)
            fields = header.split(b" ")
            by_topic = self._by_topic
            for i in range(0, len(fields) - 2, 3):
                channel = by_topic.get(fields[i])
                if channel is not None:  # else no local subscriber: another instance's
                    self._on_event(channel, fields[i + 1], fields[i + 2], payload)

    def _on_event(self, channel: str, raw_offset: bytes, raw_epoch: bytes, payload: bytes) -> None:
        last = self._last.get(channel)
        if last is None:
            return  # unsubscribed
        offset, epoch = int(raw_offset), raw_epoch.decode()
        listener = self._listener
        assert listener is not None
        if epoch != last[1] and last[1]:
            # The channel's history was reset under our subscribers: they cannot know what
            # they missed before this event.
            self._last[channel] = (offset, epoch)
            listener.lost(channel)
            return
        if offset <= last[0] and epoch == last[1]:
            return  # already delivered (catch-up, or a copy of the starting point)
        if offset > last[0] + 1 and epoch == last[1]:
            # A gap on a live connection only follows a disconnect Redis forced on us
            # (output buffer limit); let the reconnect's catch-up fill it in order.
            raise ConnectionError(f"gap in {channel}: {last[0]} -> {offset}")
        self._last[channel] = (offset, epoch)
        listener.deliver(channel, Position(str(offset), epoch), payload)

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(COMMAND_TIMEOUT_S):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _field(fields: Any, name: bytes) -> bytes:
    items = list(fields)
    for i in range(0, len(items) - 1, 2):
        if items[i] == name:
            return bytes(items[i + 1])
    raise ValueError(f"history entry without {name!r}")
