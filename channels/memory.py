"""Memory channel backend: only one node.

History and subscriptions live in this process, so publishing on one process never reaches
subscribers of another: use it for the embedded single-process server and tests; a fleet
needs the Redis backend. History is lost on restart, which is why each channel gets a fresh
random epoch when this process first sees it: a client resuming with an offset of the old
process is told "not recovered" instead of being handed someone else's events.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict, deque
from collections.abc import Sequence

from channels.backend import ChannelBackend, Listener, Position
from channels.tasks import cancel_and_wait

__all__ = [
    "DEFAULT_HISTORY_SIZE",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_CHANNELS",
    "MemoryBackend",
]

logger = logging.getLogger(__name__)

# 1000 events cover a phone that sleeps a few minutes on a busy feed (a follower of a few
# hundred active accounts sees well under 5 events/s), while one channel stays near 1 MiB
# at typical event sizes.
DEFAULT_HISTORY_SIZE = 1000
# Every active user owns two channels (feed, notifications) plus the posts and profiles on
# screen; 10,000 keeps a laptop-sized community's channels resumable. Only channels with
# no local subscriber are evicted, least recently used first.
DEFAULT_MAX_CHANNELS = 10_000
# The channel cap alone allows 10,000 x 1000 events; this byte budget over all histories is
# what really bounds memory. 64 MiB is small next to the rest of the process yet holds tens
# of thousands of events.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class _Stream:
    """One channel's epoch, last offset, capped history and the idempotency keys of the
    events it still holds."""

    __slots__ = ("epoch", "events", "keys", "last", "size")

    def __init__(self) -> None:
        # 48 random bits: two processes (or two lives of one channel) never share an epoch.
        self.epoch = secrets.token_hex(6)
        self.last = 0
        # Made with the first event: a deque costs ~0.7 KB even empty, and every idle
        # socket's channels (feed, notifications) have a stream.
        self.events: deque[tuple[int, bytes, str | None]] | None = None
        self.keys: dict[str, int] = {}
        self.size = 0

    def held(self) -> deque[tuple[int, bytes, str | None]]:
        if self.events is None:
            self.events = deque()
        return self.events


class MemoryBackend(ChannelBackend):
    """Channels in this process's memory; only one node."""

    def __init__(
        self,
        *,
        history_size: int = DEFAULT_HISTORY_SIZE,
        max_channels: int = DEFAULT_MAX_CHANNELS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if history_size < 1 or max_channels < 1 or max_bytes < 1:
            raise ValueError("history_size, max_channels and max_bytes must be positive")
        self._history_size = history_size
        self._max_channels = max_channels
        self._max_bytes = max_bytes
        self._streams: OrderedDict[str, _Stream] = OrderedDict()
        self._bytes = 0
        self._subscribed: set[str] = set()
        # Publishers hand events to a delivery task instead of running the fan-out inline,
        # as the Redis backend's reader does: a publish costs the same however many sockets
        # listen. Unbounded is safe: the consumer never awaits, so the task drains it at
        # the rate the publishers in this same process fill it.
        self._pending: asyncio.Queue[list[tuple[str, Position, bytes]]] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def subscribed(self) -> frozenset[str]:
        """Channels this process currently subscribes to."""
        return frozenset(self._subscribed)

    @property
    def channel_count(self) -> int:
        """Channels whose history is kept."""
        return len(self._streams)

    async def start(self, listener: Listener) -> None:
        if self._task is not None:
            raise RuntimeError("backend already started")
        pending: asyncio.Queue[list[tuple[str, Position, bytes]]] = asyncio.Queue()
        self._pending = pending
        self._task = asyncio.create_task(self._deliver(pending, listener), name="memory-backend")

    async def stop(self) -> None:
        task, self._task, self._pending = self._task, None, None
        if task is not None:
            await cancel_and_wait(task)

    async def publish(self, channel: str, payload: bytes, key: str | None = None) -> Position:
        return self._publish_all([(channel, payload, key)])[0]

    async def publish_many(
        self, channels: Sequence[str], payload: bytes, key: str | None = None
    ) -> list[Position]:
        return self._publish_all([(channel, payload, key) for channel in channels])

    async def publish_each(self, items: Sequence[tuple[str, bytes, str | None]]) -> list[Position]:
        return self._publish_all(items)

    def _publish_all(self, items: Sequence[tuple[str, bytes, str | None]]) -> list[Position]:
        """Append each item to its channel; the live ones go to the delivery task as one
        batch (a fan-out to a thousand feeds is one hand-over, not a thousand)."""
        positions: list[Position] = []
        live: list[tuple[str, Position, bytes]] = []
        subscribed = self._subscribed
        for channel, payload, key in items:
            stream = self._stream(channel)
            if key is not None and key in stream.keys:
                # A retry: pushed already.
                positions.append(Position(str(stream.keys[key]), stream.epoch))
                continue
            stream.last += 1
            events = stream.held()
            events.append((stream.last, payload, key))
            if key is not None:
                stream.keys[key] = stream.last
            stream.size += len(payload)
            self._bytes += len(payload)
            if len(events) > self._history_size:
                self._trim_one(stream)
            position = Position(str(stream.last), stream.epoch)
            self._enforce_budget(keep=channel)
            positions.append(position)
            if channel in subscribed:
                live.append((channel, position, payload))
        if self._pending is not None and live:
            self._pending.put_nowait(live)
        return positions

    async def subscribe(self, channel: str) -> None:
        self._subscribed.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._subscribed.discard(channel)

    async def history(self, channel: str, since: Position) -> list[tuple[Position, bytes]] | None:
        stream = self._stream(channel)
        key = self.offset_key(since.offset)
        if since.epoch != stream.epoch or key is None or len(key) != 1:
            return None
        after = key[0]
        if after > stream.last:
            return None  # an offset we never gave out: the client is confused, not behind
        events = stream.events or ()
        first = events[0][0] if events else stream.last + 1
        if after < first - 1:
            return None  # the events right after `since` were trimmed
        return [
            (Position(str(offset), stream.epoch), payload)
            for offset, payload, _ in events
            if offset > after
        ]

    async def current(self, channel: str) -> Position:
        stream = self._stream(channel)
        return Position(str(stream.last), stream.epoch)

    def _stream(self, channel: str) -> _Stream:
        stream = self._streams.get(channel)
        if stream is None:
            stream = self._streams[channel] = _Stream()
            self._enforce_budget(keep=channel)
        else:
            self._streams.move_to_end(channel)
        return stream

    def _trim_one(self, stream: _Stream) -> None:
        _, payload, key = stream.held().popleft()
        if key is not None:
            stream.keys.pop(key, None)
        stream.size -= len(payload)
        self._bytes -= len(payload)

    def _enforce_budget(self, *, keep: str) -> None:
        """Evict least recently used channels nobody here listens to, while over budget."""
        if len(self._streams) <= self._max_channels and self._bytes <= self._max_bytes:
            return
        for name in list(self._streams):
            if len(self._streams) <= self._max_channels and self._bytes <= self._max_bytes:
                return
            if name == keep or name in self._subscribed:
                continue
            self._bytes -= self._streams.pop(name).size
        # Everything left is subscribed (bounded by the sockets allowed) or `keep`: shed the
        # oldest events of `keep` rather than grow without bound; a resume from before them
        # correctly answers "not recovered".
        stream = self._streams.get(keep)
        while stream is not None and self._bytes > self._max_bytes and len(stream.events or ()) > 1:
            self._trim_one(stream)

    async def _deliver(
        self, pending: asyncio.Queue[list[tuple[str, Position, bytes]]], listener: Listener
    ) -> None:
        while True:
            batch = await pending.get()
            for channel, position, payload in batch:
                try:
                    listener.deliver(channel, position, payload)
                except Exception:
                    # One bad event must not end live delivery for every channel.
                    logger.exception("channel listener failed on %s", channel)
