"""Routing incoming frames: replies to their waiting callers, pushes to the event stream.

Synchronous on purpose: frames are handled one at a time in arrival order, so the order
of the event queue is the order the server sent, and a subscribe reply's recovered
events land before any push that arrived after it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass
from typing import Any

import msgspec

from plaza_client.errors import PlazaError, ProtocolError, error_from_ws
from plaza_client.events import SUBSCRIPTION_LOST, LiveEvent, Position
from plaza_client.resume import ResumeState

__all__ = ["FrameRouter", "Subscription"]

log = logging.getLogger("plaza_client.live")


@dataclass(frozen=True, slots=True)
class Subscription:
    """The answer to `subscribe`: where the channel stands, and whether the missed events
    (delivered through the event stream) could be recovered."""

    channel: str
    position: Position | None
    recovered: bool


@dataclass(slots=True)
class _Pending:
    op: str
    future: asyncio.Future[Any] | None
    channel: str | None = None


def consume_exception(future: asyncio.Future[Any]) -> None:
    # Mark a failure as retrieved when nobody awaits the future any more (the caller timed
    # out or was cancelled), so asyncio does not log "exception was never retrieved".
    if not future.cancelled():
        future.exception()


class FrameRouter:
    def __init__(self, state: ResumeState, events: asyncio.Queue[Any]) -> None:
        self.state = state
        self.events = events
        self.pending: dict[int, _Pending] = {}
        # Per channel, resolved by the first successful subscribe reply (which may come
        # only after a reconnect, so it is not tied to one request id).
        self.ready: dict[str, asyncio.Future[Subscription]] = {}
        self._ids = itertools.count(1)

    def expect(
        self, op: str, future: asyncio.Future[Any] | None = None, channel: str | None = None
    ) -> int:
        """A fresh request id whose reply goes to `future` (or to the subscribe logic)."""
        request_id = next(self._ids)
        self.pending[request_id] = _Pending(op, future, channel)
        return request_id

    def forget(self, request_id: int) -> None:
        self.pending.pop(request_id, None)

    def fail_pending(self, error: PlazaError) -> None:
        for pending in self.pending.values():
            if pending.future is not None and not pending.future.done():
                pending.future.set_exception(error)
        self.pending.clear()

    def fail_ready(self, error: PlazaError) -> None:
        for ready in self.ready.values():
            if not ready.done():
                ready.set_exception(error)

    # -- incoming ------------------------------------------------------------------------

    def on_frame(self, raw: str | bytes) -> None:
        try:
            frame = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            log.warning("ignoring a frame that is not JSON")
            return
        if not isinstance(frame, dict):
            log.warning("ignoring a frame that is not an object")
        elif "push" in frame:
            self._on_push(frame)
        elif "id" in frame:
            self._on_reply(frame)

    def _on_push(self, frame: dict[str, Any]) -> None:
        kind = frame.get("push")
        if kind == "event":
            for event in self.state.on_push(frame):
                self.events.put_nowait(event)
        elif kind == "close_soon":
            # The close that follows triggers the reconnect; nothing to do before it.
            log.info("server will close soon: %s %s", frame.get("code"), frame.get("reason"))
        # Unknown push kinds are ignored: the server may add some.

    def _on_reply(self, frame: dict[str, Any]) -> None:
        request_id = frame.get("id")
        if request_id is None:
            log.warning("server rejected a frame: %s", frame.get("error"))
            return
        pending = self.pending.pop(request_id, None) if isinstance(request_id, int) else None
        if pending is None:
            return  # its caller gave up (timeout) or the socket it was sent on is gone
        ok = frame.get("ok") is True
        error = None if ok else error_from_ws(frame.get("error"))
        if pending.op == "subscribe" and pending.channel is not None:
            self._on_subscribed(pending.channel, frame.get("result"), error)
        elif pending.future is not None and not pending.future.done():
            if error is None:
                pending.future.set_result(frame.get("result"))
            else:
                pending.future.set_exception(error)

    def _on_subscribed(self, channel: str, result: Any, error: PlazaError | None) -> None:
        ready = self.ready.get(channel)
        if error is None and not isinstance(result, dict):
            error = ProtocolError(f"subscribe reply without a result: {result!r}")
        if error is not None:
            self.state.on_subscribe_failed(channel)
            self.ready.pop(channel, None)
            if ready is not None and not ready.done():
                ready.set_exception(error)
            else:  # a re-subscribe after reconnect: nobody awaits it, so tell the stream
                data = {"code": error.code, "message": error.message}
                self.events.put_nowait(LiveEvent(channel, SUBSCRIPTION_LOST, data))
            return
        assert isinstance(result, dict)
        for event in self.state.on_subscribed(channel, result):
            self.events.put_nowait(event)
        if ready is not None and not ready.done():
            position = self.state.position(channel)
            ready.set_result(Subscription(channel, position, bool(result.get("recovered"))))
