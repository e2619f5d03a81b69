"""The domain's Publisher port over a channel backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from channels.backend import ChannelBackend, Position
from domain.ports import Push

# Fan-outs and consumer batches go to the backend in chunks this size: one server-side
# script call each (Redis), bounded so that one call never blocks Redis for long (~10 ms).
FANOUT_BATCH = 1000


class _Envelope(msgspec.Struct):
    type: str
    data: Any


class ChannelPublisher:
    """Encodes `{"type", "data"}` once and appends it to each channel's stream; the hub of
    every process with subscribers splices these bytes into its push frames."""

    def __init__(self, backend: ChannelBackend) -> None:
        self._backend = backend
        self._encoder = msgspec.json.Encoder()

    async def publish(self, channel: str, event_type: str, data: Any, *, key: str) -> None:
        await self.publish_at(channel, event_type, data, key=key)

    async def publish_at(
        self, channel: str, event_type: str, data: Any, *, key: str | None = None
    ) -> Position:
        return await self._backend.publish(
            channel, self._encoder.encode(_Envelope(event_type, data)), key
        )

    async def publish_many(
        self, channels: Sequence[str], event_type: str, data: Any, *, key: str
    ) -> None:
        payload = self._encoder.encode(_Envelope(event_type, data))
        for start in range(0, len(channels), FANOUT_BATCH):
            await self._backend.publish_many(channels[start : start + FANOUT_BATCH], payload, key)

    async def publish_online(
        self, channels: Sequence[str], event_type: str, data: Any, *, key: str
    ) -> None:
        payload = self._encoder.encode(_Envelope(event_type, data))
        for start in range(0, len(channels), FANOUT_BATCH):
            await self._backend.publish_online(channels[start : start + FANOUT_BATCH], payload, key)

    async def publish_each(self, pushes: Sequence[Push]) -> None:
        encode = self._encoder.encode
        items = [(p.channel, encode(_Envelope(p.event_type, p.data)), p.key) for p in pushes]
        for start in range(0, len(items), FANOUT_BATCH):
            await self._backend.publish_each(items[start : start + FANOUT_BATCH])
