"""The domain's Publisher port over a channel backend."""

from __future__ import annotations

from typing import Any

import msgspec

from channels.backend import ChannelBackend, Position


class _Envelope(msgspec.Struct):
    type: str
    data: Any


class ChannelPublisher:
    """Encodes `{"type", "data"}` once and appends it to the channel's stream; the hub of
    every process with subscribers splices these bytes into its push frames."""

    def __init__(self, backend: ChannelBackend) -> None:
        self._backend = backend
        self._encoder = msgspec.json.Encoder()

    async def publish(self, channel: str, event_type: str, data: Any) -> None:
        await self.publish_at(channel, event_type, data)

    async def publish_at(self, channel: str, event_type: str, data: Any) -> Position:
        return await self._backend.publish(
            channel, self._encoder.encode(_Envelope(event_type, data))
        )
