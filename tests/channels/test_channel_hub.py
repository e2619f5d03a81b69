"""The hub: one backend subscription per channel, encode once, resume exactly once."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from channels.backend import Position
from channels.hub import Hub, Subscriber, SubscriberClosed
from channels.memory import MemoryBackend
from channels.queue import QueueClosed, QueueOverflowed

# A socket's send-queue bound (the PLAZA_WS_SEND_QUEUE_BYTES default).
QUEUE_BYTES = 1024 * 1024


class SpyBackend(MemoryBackend):
    """A memory backend that records subscriptions and can slow down history reads."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: list[tuple[str, str]] = []
        self.history_yields = 0
        self.history_gate: asyncio.Event | None = None

    async def subscribe(self, channel: str) -> None:
        self.calls.append(("subscribe", channel))
        await asyncio.sleep(0)  # a real backend awaits the network here
        await super().subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        self.calls.append(("unsubscribe", channel))
        await asyncio.sleep(0)
        await super().unsubscribe(channel)

    async def history(self, channel: str, since: Position) -> list[tuple[Position, bytes]] | None:
        if self.history_gate is not None:
            await self.history_gate.wait()
        for _ in range(self.history_yields):
            await asyncio.sleep(0)
        return await super().history(channel, since)


@pytest.fixture
async def backend() -> SpyBackend:
    return SpyBackend()


@pytest.fixture
async def hub(backend: SpyBackend) -> AsyncIterator[Hub]:
    hub = Hub(backend)
    await hub.start()
    yield hub
    await hub.stop()


def payload(n: int) -> bytes:
    return b'{"type":"post.created","data":{"n":%d}}' % n


def push(frame: bytes | msgspec.Raw) -> dict[str, Any]:
    decoded: dict[str, Any] = msgspec.json.decode(bytes(frame))
    return decoded


async def drain(subscriber: Subscriber, count: int, timeout: float = 5.0) -> list[bytes]:
    async with asyncio.timeout(timeout):
        return [await subscriber.get() for _ in range(count)]


async def settle() -> None:
    """Let the backend's delivery task run."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_push_frame_shape_and_client_visible_name(hub: Hub, backend: SpyBackend) -> None:
    sub = Subscriber(QUEUE_BYTES)
    await hub.subscribe(sub, "feed:7")
    position = await backend.publish("feed:7", payload(1))
    [frame] = await drain(sub, 1)
    assert frame == (
        b'{"push":"event","channel":"feed","offset":"%s","epoch":"%s",'
        b'"event":{"type":"post.created","data":{"n":1}}}'
        % (position.offset.encode(), position.epoch.encode())
    )


async def test_one_backend_subscription_however_many_local_subscribers(
    hub: Hub, backend: SpyBackend
) -> None:
    subs = [Subscriber(QUEUE_BYTES) for _ in range(10)]
    await asyncio.gather(*(hub.subscribe(s, "public") for s in subs))
    assert backend.calls == [("subscribe", "public")]
    assert backend.subscribed == {"public"}
    assert hub.local_subscribers("public") == 10

    for s in subs[:9]:
        assert await hub.unsubscribe(s, "public")
    assert backend.calls == [("subscribe", "public")]
    assert backend.subscribed == {"public"}

    await hub.unsubscribe(subs[9], "public")
    assert backend.calls == [("subscribe", "public"), ("unsubscribe", "public")]
    assert backend.subscribed == frozenset()
    assert hub.channel_count == 0


async def test_every_local_subscriber_gets_the_same_bytes_object(
    hub: Hub, backend: SpyBackend
) -> None:
    subs = [Subscriber(QUEUE_BYTES) for _ in range(5)]
    for s in subs:
        await hub.subscribe(s, "post:1")
    await backend.publish("post:1", payload(1))
    frames = [(await drain(s, 1))[0] for s in subs]
    assert all(f is frames[0] for f in frames)


async def test_without_since_is_live_from_now(hub: Hub, backend: SpyBackend) -> None:
    for n in range(3):
        await backend.publish("public", payload(n))
    sub = Subscriber(QUEUE_BYTES)
    result = await hub.subscribe(sub, "public")
    current = await backend.current("public")
    assert (result.channel, result.offset, result.epoch) == (
        "public",
        current.offset,
        current.epoch,
    )
    assert result.recovered is False
    assert result.events == []
    later = await backend.publish("public", payload(3))
    [frame] = await drain(sub, 1)
    assert push(frame)["offset"] == later.offset


async def test_with_since_recovers_missed_events(hub: Hub, backend: SpyBackend) -> None:
    positions = [await backend.publish("user:4", payload(n)) for n in range(5)]
    result = await hub.subscribe(Subscriber(QUEUE_BYTES), "user:4", positions[1])
    assert result.recovered is True
    assert [push(e)["offset"] for e in result.events] == [p.offset for p in positions[2:]]
    assert [push(e)["event"]["data"]["n"] for e in result.events] == [2, 3, 4]
    assert (result.offset, result.epoch) == (positions[-1].offset, positions[-1].epoch)


async def test_unrecoverable_since_is_live_from_now(hub: Hub, backend: SpyBackend) -> None:
    await backend.publish("user:4", payload(0))
    current = await backend.current("user:4")
    for since in (Position("1", "old-epoch"), Position("", ""), Position("77", current.epoch)):
        result = await hub.subscribe(Subscriber(QUEUE_BYTES), "user:4", since)
        assert result.recovered is False
        assert result.events == []
        assert (result.offset, result.epoch) == (current.offset, current.epoch)


async def test_events_published_while_subscribing_come_once_and_after_the_reply(
    hub: Hub, backend: SpyBackend
) -> None:
    since = await backend.current("public")
    backend.history_gate = asyncio.Event()
    sub = Subscriber(QUEUE_BYTES)
    subscribing = asyncio.create_task(hub.subscribe(sub, "public", since))
    await settle()
    a = await backend.publish("public", payload(1))
    await settle()  # A's live copy is held for the subscriber
    b = await backend.publish("public", payload(2))  # B's live copy still in the backend
    backend.history_gate.set()
    result = await subscribing
    sub.send(b"REPLY")
    c = await backend.publish("public", payload(3))
    await settle()

    assert [push(e)["offset"] for e in result.events] == [a.offset, b.offset]
    assert (result.offset, result.recovered) == (b.offset, True)
    frames = await drain(sub, 2)
    assert frames[0] == b"REPLY"
    assert push(frames[1])["offset"] == c.offset
    assert len(sub.queue) == 0  # B's late live copy was not delivered a second time


async def test_late_live_copies_of_handed_over_events_are_dropped() -> None:
    # A backend's live delivery may lag its history (Redis: the reader is behind XRANGE).
    # Deliver by hand, late, to pin that down without depending on task scheduling.
    backend = SpyBackend()
    hub = Hub(backend)  # not started: nothing is delivered unless we do it
    old = await backend.publish("public", payload(0))
    since_sub, now_sub = Subscriber(QUEUE_BYTES), Subscriber(QUEUE_BYTES)
    recovered = await hub.subscribe(since_sub, "public", Position("0", old.epoch))
    live = await hub.subscribe(now_sub, "public")
    assert [push(e)["offset"] for e in recovered.events] == [old.offset]
    assert (live.offset, live.events) == (old.offset, [])

    hub.deliver("public", old, payload(0))  # the late copy
    new = await backend.publish("public", payload(1))
    hub.deliver("public", new, payload(1))
    for sub in (since_sub, now_sub):
        assert [push(f)["offset"] for f in await drain(sub, 1)] == [new.offset]
        assert len(sub.queue) == 0


async def test_subscribing_again_answers_the_same_and_delivers_once(
    hub: Hub, backend: SpyBackend
) -> None:
    positions = [await backend.publish("post:2", payload(n)) for n in range(3)]
    sub = Subscriber(QUEUE_BYTES)
    first = await hub.subscribe(sub, "post:2", positions[0])
    again = await hub.subscribe(sub, "post:2", positions[0])
    assert first == again
    assert backend.calls == [("subscribe", "post:2")]
    later = await backend.publish("post:2", payload(3))
    await settle()
    assert len(sub.queue) == 1
    assert push(await sub.get())["offset"] == later.offset


async def consume_until(sub: Subscriber, last_offset: str) -> list[dict[str, Any]]:
    pushes: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        while not pushes or pushes[-1]["offset"] != last_offset:
            pushes.append(push(await sub.get()))
    return pushes


@pytest.mark.parametrize("history_yields", [0, 1, 7])
async def test_resume_is_exactly_once_under_concurrent_publishing(history_yields: int) -> None:
    rng = random.Random(history_yields)
    backend = SpyBackend(history_size=5000)
    backend.history_yields = history_yields
    hub = Hub(backend)
    await hub.start()
    channel, total = "feed:1", 1500
    published: list[Position] = [await backend.publish(channel, payload(n)) for n in range(50)]

    async def publisher() -> None:
        for n in range(50, total):
            published.append(await backend.publish(channel, payload(n)))
            if rng.random() < 0.5:
                await asyncio.sleep(0)

    async def subscriber(delay: int, with_since: bool) -> tuple[list[int], int]:
        for _ in range(delay):
            await asyncio.sleep(0)
        index = rng.randrange(len(published)) if with_since else -1
        sub = Subscriber(QUEUE_BYTES)
        result = await hub.subscribe(sub, channel, published[index] if with_since else None)
        assert result.recovered is with_since
        got = [push(e) for e in result.events]
        if got:  # the reply's position is that of its last event
            assert (result.offset, result.epoch) == (got[-1]["offset"], got[-1]["epoch"])
        await publishing
        final = published[-1].offset
        if result.offset != final:
            got += await consume_until(sub, final)
        await hub.detach(sub)
        if not with_since:  # live from the reply's starting point
            index = int(result.offset) - 1 - len(result.events)
        return [p["event"]["data"]["n"] for p in got], index

    publishing = asyncio.create_task(publisher())
    tasks = [asyncio.create_task(subscriber(rng.randrange(400), i % 3 != 0)) for i in range(30)]
    results = await asyncio.gather(*tasks)
    for numbers, index in results:
        # Exactly the events after the starting point: none missing, none twice, in order.
        assert numbers == list(range(index + 1, total))
    assert backend.subscribed == frozenset()
    await hub.stop()


async def test_slow_subscriber_overflows_alone(backend: SpyBackend) -> None:
    hub = Hub(backend)
    await hub.start()
    slow, fast = Subscriber(4096), Subscriber(QUEUE_BYTES)
    await hub.subscribe(slow, "public")
    await hub.subscribe(fast, "public")
    received: list[bytes] = []

    async def reader() -> None:
        while len(received) < 200:
            received.append(await fast.get())

    reading = asyncio.create_task(reader())
    for n in range(200):
        await backend.publish("public", payload(n))
        if n % 10 == 0:
            await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await reading
    assert [push(f)["event"]["data"]["n"] for f in received] == list(range(200))
    assert slow.overflowed and not fast.overflowed
    with pytest.raises(QueueOverflowed):
        await slow.get()
    assert slow.queue.size == 0  # its pending frames were released
    await hub.stop()


async def test_detach_leaves_nothing_behind(hub: Hub, backend: SpyBackend) -> None:
    sub = Subscriber(QUEUE_BYTES)
    for channel in ("feed:1", "notifications:1", "post:3", "public"):
        await hub.subscribe(sub, channel)
    await hub.detach(sub)
    assert sub.channels == set()
    assert hub.channel_count == 0
    assert backend.subscribed == frozenset()
    with pytest.raises(QueueClosed):
        await sub.get()
    with pytest.raises(SubscriberClosed):
        await hub.subscribe(sub, "public")
    await backend.publish("public", payload(1))
    await settle()
    assert len(sub.queue) == 0


async def test_detach_during_a_subscribe_releases_the_channel(
    hub: Hub, backend: SpyBackend
) -> None:
    backend.history_gate = asyncio.Event()
    await backend.publish("post:5", payload(0))
    sub = Subscriber(QUEUE_BYTES)
    subscribing = asyncio.create_task(hub.subscribe(sub, "post:5", await backend.current("post:5")))
    await settle()
    assert backend.subscribed == {"post:5"}
    await hub.detach(sub)
    backend.history_gate.set()
    await subscribing
    assert hub.channel_count == 0
    assert backend.subscribed == frozenset()


async def test_unsubscribe_stops_delivery(hub: Hub, backend: SpyBackend) -> None:
    sub = Subscriber(QUEUE_BYTES)
    await hub.subscribe(sub, "public")
    assert await hub.unsubscribe(sub, "public")
    assert not await hub.unsubscribe(sub, "public")
    await backend.publish("public", payload(1))
    await settle()
    assert len(sub.queue) == 0


async def test_failed_subscribe_leaves_no_membership(hub: Hub, backend: SpyBackend) -> None:
    async def broken(channel: str, since: Position) -> list[tuple[Position, bytes]] | None:
        raise ConnectionError("backend down")

    backend.history = broken  # type: ignore[method-assign]
    sub = Subscriber(QUEUE_BYTES)
    with pytest.raises(ConnectionError):
        await hub.subscribe(sub, "public", Position("0", "e"))
    assert sub.channels == set()
    assert hub.channel_count == 0
    assert backend.subscribed == frozenset()
