"""The channel backend contract: publish with positions, history, one process-level feed.

A backend stores a capped history per channel and delivers what is published to the
channels this process subscribed to. Every backend (memory, Redis streams) passes the same
contract suite in tests/channels/test_backend_contract.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import msgspec

__all__ = ["ChannelBackend", "Consumer", "Position", "parse_offset"]


class Position(msgspec.Struct, frozen=True):
    """Where an event sits in its channel: an offset, valid inside one epoch."""

    offset: str
    epoch: str


Consumer = Callable[[str, Position, bytes], None]
"""Receives `(channel, position, payload)` for every event of a subscribed channel.

Synchronous on purpose: the hub's fan-out only appends to bounded queues, so a backend's
reader never waits on a socket and one slow client cannot hold up delivery to the rest.
"""


def parse_offset(offset: str) -> tuple[int, ...] | None:
    """Order key of an offset made of dash-separated decimals ("7", "1700000000000-3")."""
    parts = offset.split("-")
    # isdecimal() would accept non-ASCII digits; offsets we hand out are ASCII only.
    if not all(part.isascii() and part.isdigit() for part in parts):
        return None
    return tuple(int(part) for part in parts)


class ChannelBackend(ABC):
    """A channel backend: positions, capped history and delivery to one consumer."""

    @abstractmethod
    async def start(self, consumer: Consumer) -> None:
        """Start delivering events of subscribed channels to `consumer`."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop delivering and release resources."""

    @abstractmethod
    async def publish(self, channel: str, payload: bytes) -> Position:
        """Append `payload` to `channel` and return its position."""

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
