"""Live events as the SDK delivers them, and typed decoding of their `data`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from plaza_client.models import CommentCreated, Notification, Page, Post, to_builtins

__all__ = ["RESYNC", "LiveEvent", "Position", "Resync", "decode_event_data"]

# event.type of the SDK's own event telling that a channel's history could not be
# recovered after a reconnect; its data is a Resync.
RESYNC = "resync"
# event.type when the server refused to re-subscribe a channel after a reconnect (e.g.
# the post was deleted, or its author blocked you); data is {"code", "message"}.
SUBSCRIPTION_LOST = "subscription_lost"

# The events whose data has a REST shape; the others (counters, ids) stay plain dicts.
_TYPED: dict[str, type[Any]] = {
    "post.created": Post,
    "notification.created": Notification,
    "comment.created": CommentCreated,
}


@dataclass(frozen=True, slots=True)
class Position:
    """A place in a channel's stream; both parts are opaque strings from the server."""

    offset: str
    epoch: str

    def to_wire(self) -> dict[str, str]:
        return {"offset": self.offset, "epoch": self.epoch}


@dataclass(slots=True)
class Resync:
    """data of a `resync` event: the channel's history since the last delivered event is
    gone (trimmed, or the channel's epoch changed), so events may have been missed.

    For `feed`, `notifications` and `user:{id}` the session fetches the newest page over
    REST before handing the event over (`page`; `error` if that fetch failed). Replace
    your state of the channel with it, then keep applying live events; a later
    post.created / notification.created whose item is already in the page is dropped."""

    channel: str
    page: Page[Any] | None = None
    error: Exception | None = None


@dataclass(slots=True)
class LiveEvent:
    channel: str
    type: str
    data: Any
    offset: str | None = None
    epoch: str | None = None
    # True when the event came from the subscribe reply's recovered history.
    recovered: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def position(self) -> Position | None:
        if self.offset is None or self.epoch is None:
            return None
        return Position(self.offset, self.epoch)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (for logs and the CLI)."""
        data: Any
        if isinstance(self.data, Resync):
            data = {
                "channel": self.data.channel,
                "page": None if self.data.page is None else to_builtins(self.data.page),
                "error": None if self.data.error is None else str(self.data.error),
            }
        else:
            data = to_builtins(self.data)
        return {
            "channel": self.channel,
            "type": self.type,
            "offset": self.offset,
            "epoch": self.epoch,
            "recovered": self.recovered,
            "data": data,
        }


def decode_event_data(event_type: str, data: Any) -> Any:
    """Post / Notification / CommentCreated for the events that carry those shapes; the
    raw dict otherwise — and also when a typed decode fails, so a server-side shape change
    degrades to a dict instead of killing the event stream."""
    target = _TYPED.get(event_type)
    if target is None:
        return data
    try:
        return msgspec.convert(data, type=target)
    except msgspec.ValidationError:
        return data


def event_from_push(push: dict[str, Any], *, recovered: bool = False) -> LiveEvent | None:
    """A LiveEvent from an `{"push": "event", ...}` frame; None if it is not one."""
    channel = push.get("channel")
    event = push.get("event")
    if not isinstance(channel, str) or not isinstance(event, dict):
        return None
    event_type = event.get("type")
    if not isinstance(event_type, str):
        return None
    offset, epoch = push.get("offset"), push.get("epoch")
    return LiveEvent(
        channel=channel,
        type=event_type,
        data=decode_event_data(event_type, event.get("data")),
        offset=None if offset is None else str(offset),
        epoch=None if epoch is None else str(epoch),
        recovered=recovered,
        raw=push,
    )
