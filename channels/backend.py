"""The channel backend contract: publish with positions, history, one process-level feed.

A backend stores a capped history per channel and delivers what is published to the
channels this process subscribed to. Every backend (memory, Redis) passes the same
contract suite in tests/channels/test_channel_backend_contract.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Protocol

import msgspec

__all__ = ["ChannelBackend", "Listener", "Position", "parse_offset"]


class Position(msgspec.Struct, frozen=True):
    """Where an event sits in its channel: an offset, valid inside one epoch."""

    offset: str
    epoch: str


class Listener(Protocol):
    """What a backend delivers to (the hub). Synchronous on purpose: the hub's fan-out only
    appends to bounded queues, so a backend's reader never waits on a socket and one slow
    client cannot hold up delivery to the rest."""

    def deliver(self, channel: str, position: Position, payload: bytes) -> None:
        """An event of a subscribed channel, in the channel's order."""

    def lost(self, channel: str) -> None:
        """Events of a subscribed channel may have been missed and cannot be recovered
        (its history was lost while this process was cut off): its subscribers must
        resume, and will be told `recovered: false`."""


def parse_offset(offset: str) -> tuple[int, ...] | None:
    """Order key of an offset made of dash-separated decimals ("7", "1700000000000-3")."""
    parts = offset.split("-")
    # isdecimal() would accept non-ASCII digits; offsets we hand out are ASCII only.
    if not all(part.isascii() and part.isdigit() for part in parts):
        return None
    return tuple(int(part) for part in parts)


class ChannelBackend(ABC):
    """A channel backend: positions, capped history and delivery to one listener."""

    @abstractmethod
    async def start(self, listener: Listener) -> None:
        """Start delivering events of subscribed channels to `listener`."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop delivering and release resources."""

    @abstractmethod
    async def publish(self, channel: str, payload: bytes, key: str | None = None) -> Position:
        """Append `payload` to `channel` and return its position. With a `key` already
        published on this channel (while its history holds it), nothing is appended and
        the first position is returned: a retried publish never pushes twice."""

    async def publish_many(
        self, channels: Sequence[str], payload: bytes, key: str | None = None
    ) -> list[Position]:
        """`publish` on each channel (a fan-out); backends do it in few round trips."""
        return [await self.publish(channel, payload, key) for channel in channels]

    async def publish_online(
        self, channels: Sequence[str], payload: bytes, key: str | None = None
    ) -> list[Position | None]:
        """`publish_many` to the channels someone subscribed to recently; None for the
        others, whose positions are then forgotten (a new epoch: a subscriber that comes
        back resumes with `recovered: false`). In one process every channel is online:
        publishing is as cheap as asking."""
        return list(await self.publish_many(channels, payload, key))

    async def publish_each(self, items: Sequence[tuple[str, bytes, str | None]]) -> list[Position]:
        """`publish` of `(channel, payload, key)` items, in order (a consumer's batch);
        backends do it in few round trips."""
        return [await self.publish(channel, payload, key) for channel, payload, key in items]

    @abstractmethod
    async def subscribe(self, channel: str) -> None:
        """Deliver every event published to `channel` after this call returns."""

    @abstractmethod
    async def unsubscribe(self, channel: str) -> None:
        """Stop delivering events of `channel` (idempotent)."""

    @abstractmethod
    async def history(self, channel: str, since: Position) -> list[tuple[Position, bytes]] | None:
        """Events strictly after `since`, in order; None when that cannot be recovered."""

    @abstractmethod
    async def current(self, channel: str) -> Position:
        """The position of the latest event; offset "0" for a channel never published."""

    def offset_key(self, offset: str) -> tuple[int, ...] | None:
        """A key giving the total order of offsets inside one epoch; None if unparseable."""
        return parse_offset(offset)
