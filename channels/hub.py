"""The per-process hub: local subscribers of channels, over one backend subscription each.

However many sockets of this process listen to a channel, the backend is subscribed once
(on the first local subscriber, released after the last), and each event is encoded once
into a push frame whose same bytes object goes to every local subscriber's queue.

Resume without gap or duplicate (`Hub.subscribe`): the subscriber is attached first with
its live events held in a buffer, then the history after `since` is read, then the held
events newer than the last history event are appended (older ones are the duplicates) and
the subscriber goes live above that offset: live copies arriving late of events already
handed over are dropped too. Every event is thus either in the history, in the buffer, or
delivered after going live, and the offset order removes the overlap.
"""

from __future__ import annotations

import asyncio

import msgspec

from channels.backend import ChannelBackend, Position
from channels.protocol import SubscribeResult, encode_push
from channels.queue import SendQueue
from domain.channel_names import client_name

__all__ = ["Hub", "SubscribeResult", "Subscriber", "SubscriberClosed"]


class SubscriberClosed(Exception):
    """The subscriber was detached; it can subscribe no more."""


class Subscriber:
    """One socket's side of the hub: its send queue and the channels it listens to."""

    __slots__ = ("_lock", "channels", "queue")

    def __init__(self, max_bytes: int) -> None:
        self.queue = SendQueue(max_bytes)
        # Internal channel names; maintained by the hub only.
        self.channels: set[str] = set()
        # Serialises this subscriber's subscribe calls: two of them for the same channel
        # must not interleave their buffers.
        self._lock = asyncio.Lock()

    @property
    def closed(self) -> bool:
        return self.queue.closed

    @property
    def overflowed(self) -> bool:
        return self.queue.overflowed

    def send(self, frame: bytes) -> bool:
        """Queue a frame (reply or push) without waiting; False if closed or overflowed."""
        return self.queue.put(frame)

    async def get(self) -> bytes:
        """The next frame to write to the socket (see SendQueue.get)."""
        return await self.queue.get()


class _Member:
    """A subscriber's membership of one channel; `held` is not None while it catches up."""

    __slots__ = ("floor", "floor_epoch", "held", "held_bytes")

    def __init__(self) -> None:
        self.held: list[tuple[Position, bytes]] | None = []
        self.held_bytes = 0
        # Once live, pushes at or below this offset (same epoch) were already handed over in
        # the reply: a backend's live delivery may lag its history, so copies of events read
        # from history can still arrive after going live.
        self.floor: tuple[int, ...] | None = None
        self.floor_epoch = ""


class _Channel:
    __slots__ = ("backend_subscribed", "client_name", "lock", "members")

    def __init__(self, name: str) -> None:
        self.client_name = client_name(name)
        self.members: dict[Subscriber, _Member] = {}
        self.backend_subscribed = False
        # Orders backend subscribe/unsubscribe of this channel.
        self.lock = asyncio.Lock()


class Hub:
    """Local subscribers of channels, fed by one backend."""

    def __init__(self, backend: ChannelBackend) -> None:
        self._backend = backend
        self._channels: dict[str, _Channel] = {}

    @property
    def backend(self) -> ChannelBackend:
        return self._backend

    def local_subscribers(self, channel: str) -> int:
        """How many local subscribers `channel` (internal name) has."""
        state = self._channels.get(channel)
        return len(state.members) if state is not None else 0

    @property
    def channel_count(self) -> int:
        """Channels with local subscribers (or being released)."""
        return len(self._channels)

    async def start(self) -> None:
        await self._backend.start(self)

    async def stop(self) -> None:
        await self._backend.stop()

    async def subscribe(
        self, subscriber: Subscriber, channel: str, since: Position | None = None
    ) -> SubscribeResult:
        """Attach `subscriber` to `channel` (internal name), resuming after `since`.

        `recovered` is true only when `since` was given and everything after it was still
        held; then `events` holds every missed push, in order. Otherwise `events` holds at
        most the few pushes published while subscribing, after the current position.
        Live pushes are queued from the moment this returns: the caller must queue the
        reply before its next await so that the reply precedes them.
        """
        async with subscriber._lock:
            if subscriber.closed:
                raise SubscriberClosed()
            state = self._channels.get(channel)
            if state is None:
                state = self._channels[channel] = _Channel(channel)
            member = _Member()
            # Replacing an earlier membership: its live pushes are already queued, the new
            # one holds everything from now on; nothing is delivered twice.
            state.members[subscriber] = member
            subscriber.channels.add(channel)
            try:
                await self._ensure_backend(state, channel)
                history = None
                if since is not None:
                    history = await self._backend.history(channel, since)
                if since is None or history is None:
                    start, recovered, history = await self._backend.current(channel), False, []
                else:
                    start, recovered = since, True
            except BaseException:
                await self._leave(subscriber, channel)
                raise
            return self._go_live(subscriber, state, member, start, recovered, history)

    def _go_live(
        self,
        subscriber: Subscriber,
        state: _Channel,
        member: _Member,
        start: Position,
        recovered: bool,
        history: list[tuple[Position, bytes]],
    ) -> SubscribeResult:
        # Synchronous from here on: no live push can slip between the merge and going live.
        events = [
            msgspec.Raw(encode_push(state.client_name, pos, payload)) for pos, payload in history
        ]
        last = history[-1][0] if history else start
        last_key = self._backend.offset_key(last.offset)
        for pos, frame in member.held or ():
            if pos.epoch == last.epoch:
                key = self._backend.offset_key(pos.offset)
                if key is None or last_key is None or key <= last_key:
                    continue  # already in the history, or before the starting point
            # A new epoch means history was lost and this event is news: keep it.
            events.append(msgspec.Raw(frame))
            last = pos
            last_key = self._backend.offset_key(pos.offset)
        # If detached meanwhile, the membership is gone and detach did the cleanup.
        if state.members.get(subscriber) is member:
            member.held = None
            member.held_bytes = 0
            member.floor, member.floor_epoch = last_key, last.epoch
        return SubscribeResult(state.client_name, last.offset, last.epoch, recovered, events)

    async def unsubscribe(self, subscriber: Subscriber, channel: str) -> bool:
        """Detach `subscriber` from `channel`; False if it was not subscribed."""
        if channel not in subscriber.channels:
            return False
        await self._leave(subscriber, channel)
        return True

    async def detach(self, subscriber: Subscriber) -> None:
        """Close `subscriber` and leave all its channels (the socket is gone)."""
        subscriber.queue.close()
        for channel in list(subscriber.channels):
            await self._leave(subscriber, channel)

    async def _leave(self, subscriber: Subscriber, channel: str) -> None:
        subscriber.channels.discard(channel)
        state = self._channels.get(channel)
        if state is None:
            return
        state.members.pop(subscriber, None)
        await self._release_if_idle(state, channel)

    async def _ensure_backend(self, state: _Channel, channel: str) -> None:
        async with state.lock:
            if state.members and not state.backend_subscribed:
                await self._backend.subscribe(channel)
                state.backend_subscribed = True

    async def _release_if_idle(self, state: _Channel, channel: str) -> None:
        async with state.lock:
            if state.members:
                return
            if state.backend_subscribed:
                await self._backend.unsubscribe(channel)
                state.backend_subscribed = False
            # Someone may have joined while we awaited; they keep the entry and resubscribe.
            if not state.members and self._channels.get(channel) is state:
                del self._channels[channel]

    def lost(self, channel: str) -> None:
        """Listener: the channel's events may have been missed for good; its local
        subscribers close with 4000, resume and are told `recovered: false`."""
        state = self._channels.get(channel)
        if state is None:
            return
        for subscriber in list(state.members):
            subscriber.queue.lose()

    def deliver(self, channel: str, position: Position, payload: bytes) -> None:
        """Listener: one event of a subscribed channel, encoded once for every subscriber."""
        state = self._channels.get(channel)
        if state is None or not state.members:
            return
        frame = encode_push(state.client_name, position, payload)
        key: tuple[int, ...] | None = None
        for subscriber, member in state.members.items():
            if member.held is None:
                if member.floor is not None and position.epoch == member.floor_epoch:
                    key = key or self._backend.offset_key(position.offset)
                    if key is not None and key <= member.floor:
                        continue  # already in the subscribe reply
                    # Past the floor: the backend delivers in order, later events are too.
                    member.floor = None
                subscriber.queue.put(frame)
                continue
            member.held.append((position, frame))
            member.held_bytes += len(frame)
            # Held pushes count against the same bound as queued ones: a subscriber whose
            # history read takes long on a busy channel is a slow consumer too.
            if member.held_bytes > subscriber.queue.max_bytes:
                subscriber.queue.overflow()
                member.held.clear()
