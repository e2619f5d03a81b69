"""The push codec: how a channel event becomes the bytes of a push frame (docs/protocol.md).

Pure: no I/O, no asyncio. The hub encodes each event once with `encode_push` and hands the
same bytes to every local subscriber; a subscribe reply carries the missed pushes in a
`SubscribeResult`. The session's own frames (requests, replies, errors) are the session's
business (server/ws).
"""

from __future__ import annotations

import msgspec

from channels.backend import Position

__all__ = ["SubscribeResult", "encode_push"]


class SubscribeResult(msgspec.Struct, frozen=True):
    """Result of `subscribe`: where live pushes continue, and what came before them.

    `offset`/`epoch` are the position of the last event in `events` (or the starting point
    when `events` is empty): live pushes continue right after it.
    """

    channel: str
    offset: str
    epoch: str
    recovered: bool
    events: list[msgspec.Raw]


class _PushEvent(msgspec.Struct):
    push: str
    channel: str
    offset: str
    epoch: str
    event: msgspec.Raw


_encoder = msgspec.json.Encoder()


def encode_push(channel: str, position: Position, payload: bytes) -> bytes:
    """A push frame; `payload` (already-encoded event JSON) is spliced in, not re-parsed."""
    return _encoder.encode(
        _PushEvent("event", channel, position.offset, position.epoch, msgspec.Raw(payload))
    )
