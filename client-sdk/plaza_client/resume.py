"""Resume bookkeeping of a live session, without sockets (pure, unit-testable).

Per channel it keeps the position of the last delivered event, which (epoch, offset)
pairs were delivered recently, and the pushes that arrived while a subscribe was in
flight. The session feeds it frames and sends/delivers what it returns:

    state.add("feed")
    send(subscribe, **state.subscribe_args("feed"))    # on every (re)connect
    deliver(state.on_subscribed("feed", result))       # recovered events, resync, buffer
    deliver(state.on_push(push))                       # live pushes, deduped
    state.connection_lost()                            # then resubscribe all channels

Guarantees: events of a channel are delivered in server order, none twice (within the
dedupe window), and a gap the server cannot fill is reported as a `resync` event.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from plaza_client.events import RESYNC, LiveEvent, Position, Resync, event_from_push

__all__ = ["ResumeState"]

# How many (epoch, offset) pairs per channel are remembered for dedupe. Duplicates only
# come from the overlap of a resume with the live stream (a few events at most) or an
# at-least-once redelivery right after a reconnect, so a thousand is generous and costs
# ~100 KB per channel at worst.
DEDUPE_WINDOW = 1024


@dataclass
class _Channel:
    position: Position | None = None
    # A subscribe is in flight: pushes are held back until its reply, because the reply
    # may carry missed events that come before them.
    pending: bool = False
    asked_since: Position | None = None
    buffer: list[dict[str, Any]] = field(default_factory=list)
    seen_order: deque[tuple[str, str]] = field(default_factory=deque)
    seen: set[tuple[str, str]] = field(default_factory=set)


class ResumeState:
    def __init__(self, dedupe_window: int = DEDUPE_WINDOW) -> None:
        self._window = dedupe_window
        self._channels: dict[str, _Channel] = {}

    # -- the set of channels -------------------------------------------------------------

    def add(self, channel: str, since: Position | None = None) -> None:
        """Track `channel`; `since` resumes from a position saved earlier (optional)."""
        if channel not in self._channels:
            self._channels[channel] = _Channel(position=since)

    def remove(self, channel: str) -> None:
        self._channels.pop(channel, None)

    def __contains__(self, channel: object) -> bool:
        return channel in self._channels

    @property
    def channels(self) -> list[str]:
        return list(self._channels)

    def position(self, channel: str) -> Position | None:
        state = self._channels.get(channel)
        return None if state is None else state.position

    def pending(self, channel: str) -> bool:
        state = self._channels.get(channel)
        return state is not None and state.pending

    # -- subscribing ---------------------------------------------------------------------

    def subscribe_args(self, channel: str) -> dict[str, Any]:
        """Arguments of the `subscribe` op to send now; marks the channel pending."""
        state = self._channels[channel]
        state.pending = True
        state.buffer.clear()
        state.asked_since = state.position
        args: dict[str, Any] = {"channel": channel}
        if state.position is not None:
            args["since"] = state.position.to_wire()
        return args

    def on_subscribed(self, channel: str, result: dict[str, Any]) -> list[LiveEvent]:
        """The subscribe reply arrived: returns what to deliver, in order."""
        state = self._channels.get(channel)
        if state is None or not state.pending:
            return []
        state.pending = False
        out: list[LiveEvent] = []
        offset, epoch = result.get("offset"), result.get("epoch")
        head = None if offset is None or epoch is None else Position(str(offset), str(epoch))
        if head is not None:
            state.position = head
        if result.get("recovered"):
            for push in result.get("events") or []:
                if isinstance(push, dict):
                    out.extend(self._accept(channel, state, push, recovered=True))
        elif state.asked_since is not None:
            # We asked to resume and the server could not: say so rather than go on as
            # if nothing was missed.
            out.append(
                LiveEvent(
                    channel=channel,
                    type=RESYNC,
                    data=Resync(channel=channel),
                    offset=None if head is None else head.offset,
                    epoch=None if head is None else head.epoch,
                )
            )
        buffered, state.buffer = state.buffer, []
        for push in buffered:
            out.extend(self._accept(channel, state, push, recovered=False))
        return out

    def on_subscribe_failed(self, channel: str) -> None:
        """The server refused the channel (forbidden, not_found): stop tracking it."""
        self.remove(channel)

    def connection_lost(self) -> None:
        """Forget in-flight subscribes; what they held back is re-sent on resume."""
        for state in self._channels.values():
            state.pending = False
            state.buffer.clear()

    # -- pushes --------------------------------------------------------------------------

    def on_push(self, push: dict[str, Any]) -> list[LiveEvent]:
        """An `{"push": "event"}` frame: returns the events to deliver now (0 or 1)."""
        channel = push.get("channel")
        if not isinstance(channel, str):
            return []
        state = self._channels.get(channel)
        if state is None:
            return []  # unsubscribed meanwhile
        if state.pending:
            state.buffer.append(push)
            return []
        return self._accept(channel, state, push, recovered=False)

    def _accept(
        self, channel: str, state: _Channel, push: dict[str, Any], *, recovered: bool
    ) -> list[LiveEvent]:
        event = event_from_push(push, recovered=recovered)
        if event is None or event.channel != channel:
            return []
        position = event.position
        if position is not None:
            key = (position.epoch, position.offset)
            if key in state.seen:
                return []
            state.seen.add(key)
            state.seen_order.append(key)
            if len(state.seen_order) > self._window:
                state.seen.discard(state.seen_order.popleft())
            state.position = position
        return [event]
