"""The contract every channel backend passes: the memory backend and the Redis one alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from channels.backend import ChannelBackend, Position
from channels.memory import MemoryBackend
from channels.redis_backend import RedisChannelBackend
from channels.redis_client import connect

BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.redis)]


@dataclass
class Harness:
    backend: ChannelBackend
    received: list[tuple[str, Position, bytes]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    lost_channels: list[str] = field(default_factory=list)

    def deliver(self, channel: str, position: Position, payload: bytes) -> None:
        self.received.append((channel, position, payload))
        self.arrived.set()

    def lost(self, channel: str) -> None:
        self.lost_channels.append(channel)

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()

    def key(self, position: Position) -> tuple[int, ...]:
        key = self.backend.offset_key(position.offset)
        assert key is not None
        return key


MakeBackend = Callable[..., Awaitable[Harness]]


async def drop_keys(url: str, prefix: str) -> None:
    client = connect(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(params=BACKENDS)
async def make_backend(request: pytest.FixtureRequest) -> AsyncIterator[MakeBackend]:
    started: list[Harness] = []
    clients = []
    url = prefix = ""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("redis_prefix")

    async def make(history_size: int = 100) -> Harness:
        backend: ChannelBackend
        if request.param == "memory":
            backend = MemoryBackend(history_size=history_size)
        else:
            # Every backend of one test shares the keys, as instances of a fleet do.
            client = connect(url)
            clients.append(client)
            backend = RedisChannelBackend(
                client,
                pubsub_client=connect(url, retry=False),
                prefix=prefix,
                history_size=history_size,
            )
        harness = Harness(backend)
        await harness.backend.start(harness)
        started.append(harness)
        return harness

    yield make
    for harness in started:
        await harness.backend.stop()
    for client in clients:
        await client.aclose()
    if url:
        await drop_keys(url, prefix)


@pytest.fixture
async def h(make_backend: MakeBackend) -> Harness:
    return await make_backend()


async def test_never_published_channel_is_at_zero_with_a_stable_epoch(h: Harness) -> None:
    first = await h.backend.current("public")
    again = await h.backend.current("public")
    assert first.offset == "0"
    assert first == again
    assert first.epoch != ""
    assert await h.backend.history("public", first) == []


async def test_publish_positions_increase_in_one_epoch(h: Harness) -> None:
    epoch = (await h.backend.current("feed:1")).epoch
    positions = [await h.backend.publish("feed:1", b'{"n":%d}' % i) for i in range(50)]
    assert {p.epoch for p in positions} == {epoch}
    keys = [h.key(p) for p in positions]
    assert keys == sorted(keys)
    assert len(set(keys)) == 50
    assert h.key(positions[0]) > h.key(Position("0", epoch))
    assert await h.backend.current("feed:1") == positions[-1]


async def test_history_since_returns_exactly_the_later_events_in_order(h: Harness) -> None:
    start = await h.backend.current("post:9")
    payloads = [b'{"type":"post.liked","data":{"n":%d}}' % i for i in range(10)]
    positions = [await h.backend.publish("post:9", p) for p in payloads]

    assert await h.backend.history("post:9", start) == list(zip(positions, payloads, strict=True))
    assert await h.backend.history("post:9", positions[3]) == list(
        zip(positions[4:], payloads[4:], strict=True)
    )
    assert await h.backend.history("post:9", positions[-1]) == []


async def test_payload_bytes_survive_unchanged(h: Harness) -> None:
    payload = '{"type":"post.created","data":{"content":"héllo \\"wörld\\" 🎉"}}'.encode()
    start = await h.backend.current("public")
    await h.backend.publish("public", payload)
    [(_, got)] = await h.backend.history("public", start) or []
    assert got == payload


async def test_trimmed_history_is_not_recoverable(make_backend: MakeBackend) -> None:
    h = await make_backend(history_size=5)
    start = await h.backend.current("feed:2")
    positions = [await h.backend.publish("feed:2", b'{"n":%d}' % i) for i in range(10)]

    assert await h.backend.history("feed:2", start) is None
    # Events 6..10 are kept: resuming right after event 5 loses nothing ...
    kept = await h.backend.history("feed:2", positions[4])
    assert kept is not None
    assert [p for p, _ in kept] == positions[5:]
    # ... resuming after event 4 would need event 5, which is gone.
    assert await h.backend.history("feed:2", positions[3]) is None


async def test_other_epoch_is_not_recoverable(h: Harness) -> None:
    first = await h.backend.publish("user:3", b"{}")
    await h.backend.publish("user:3", b"{}")
    assert await h.backend.history("user:3", Position(first.offset, first.epoch + "x")) is None
    assert await h.backend.history("user:3", Position("0", "")) is None


@pytest.mark.parametrize("offset", ["", "abc", "-1", "1.5", " 1", "1 ", "\u0661", "1-", "--"])
async def test_unparseable_offset_is_not_recoverable(h: Harness, offset: str) -> None:
    position = await h.backend.publish("public", b"{}")
    assert await h.backend.history("public", Position(offset, position.epoch)) is None


async def test_offset_never_given_out_is_not_recoverable(h: Harness) -> None:
    position = await h.backend.publish("public", b"{}")
    future = Position("999999", position.epoch)
    assert await h.backend.history("public", future) is None


async def test_unknown_channel_history_is_not_recoverable(h: Harness) -> None:
    assert await h.backend.history("post:404", Position("0", "some-epoch")) is None


async def test_subscribed_channel_is_delivered_in_order(h: Harness) -> None:
    await h.backend.subscribe("feed:5")
    positions = [await h.backend.publish("feed:5", b'{"n":%d}' % i) for i in range(3)]
    await h.wait_for(3)
    assert h.received == [("feed:5", p, b'{"n":%d}' % i) for i, p in enumerate(positions)]


async def test_unsubscribed_and_never_subscribed_channels_are_not_delivered(h: Harness) -> None:
    await h.backend.subscribe("a")
    await h.backend.subscribe("b")
    await h.backend.publish("b", b'{"before":1}')
    await h.wait_for(1)
    await h.backend.unsubscribe("b")
    await h.backend.unsubscribe("b")  # idempotent
    await h.backend.publish("b", b'{"after":1}')
    await h.backend.publish("c", b'{"never":1}')
    sentinel = await h.backend.publish("a", b'{"sentinel":1}')
    await h.wait_for(2)
    await asyncio.sleep(0.05)  # room for a stray late delivery to show up
    assert h.received == [
        ("b", h.received[0][1], b'{"before":1}'),
        ("a", sentinel, b'{"sentinel":1}'),
    ]


async def test_resubscribe_after_unsubscribe_delivers_again(h: Harness) -> None:
    await h.backend.subscribe("public")
    await h.backend.unsubscribe("public")
    await h.backend.subscribe("public")
    position = await h.backend.publish("public", b"{}")
    await h.wait_for(1)
    assert h.received == [("public", position, b"{}")]


async def test_many_channels_keep_separate_histories_and_order(h: Harness) -> None:
    channels = [f"post:{i}" for i in range(1, 201)]
    starts = {c: await h.backend.current(c) for c in channels}
    for c in channels:
        await h.backend.subscribe(c)
    published: dict[str, list[tuple[Position, bytes]]] = {c: [] for c in channels}
    for round_ in range(3):
        for c in channels:
            payload = b'{"c":"%s","r":%d}' % (c.encode(), round_)
            published[c].append((await h.backend.publish(c, payload), payload))

    for c in channels:
        assert await h.backend.history(c, starts[c]) == published[c]
    await h.wait_for(600)
    for c in channels:
        assert [(p, b) for ch, p, b in h.received if ch == c] == published[c]


async def test_a_key_already_published_on_a_channel_pushes_nothing_twice(h: Harness) -> None:
    await h.backend.subscribe("post:7")
    first = await h.backend.publish("post:7", b'{"v":1}', "event-1")
    again = await h.backend.publish("post:7", b'{"v":1}', "event-1")
    other = await h.backend.publish("post:7", b'{"v":2}', "event-2")
    assert again == first
    assert h.key(other) > h.key(first)
    await h.wait_for(2)
    await asyncio.sleep(0.05)
    assert [b for _, _, b in h.received] == [b'{"v":1}', b'{"v":2}']
    # Keys are per channel: the same key elsewhere is a first publish there.
    elsewhere = await h.backend.publish("post:8", b'{"v":1}', "event-1")
    assert elsewhere.offset == "1"


async def test_publish_many_reaches_every_channel_once_in_order(h: Harness) -> None:
    channels = [f"feed:{i}" for i in range(1, 1201)]
    for c in channels[:3]:
        await h.backend.subscribe(c)
    starts = {c: await h.backend.current(c) for c in channels[:3]}
    positions = await h.backend.publish_many(channels, b'{"post":1}', "post-1")
    assert len(positions) == len(channels)
    assert {p.offset for p in positions} == {"1"}
    # A retry of the whole fan-out (a consumer redelivered) appends nothing anywhere.
    assert await h.backend.publish_many(channels, b'{"post":1}', "post-1") == positions
    await h.backend.publish_many(channels[:3], b'{"post":2}', "post-2")
    await h.wait_for(6)
    for c in channels[:3]:
        got = await h.backend.history(c, starts[c])
        assert got is not None and [b for _, b in got] == [b'{"post":1}', b'{"post":2}']
        assert [b for ch, _, b in h.received if ch == c] == [b'{"post":1}', b'{"post":2}']


async def test_publish_online_reaches_a_channel_subscribed_on_any_instance(
    make_backend: MakeBackend,
) -> None:
    here = await make_backend()
    # Two instances of a fleet on Redis; one process holds everything in memory.
    there = await make_backend() if isinstance(here.backend, RedisChannelBackend) else here
    await there.backend.subscribe("feed:1")
    [position] = await here.backend.publish_online(["feed:1"], b"hi", "k1")
    assert position is not None
    await there.wait_for(1)
    assert there.received == [("feed:1", position, b"hi")]


async def test_a_skipped_offline_channel_is_never_resumed_as_complete(
    make_backend: MakeBackend,
) -> None:
    """A channel nobody subscribed to recently is skipped, and a subscriber coming back
    with its old position must hear `not recoverable`, not `nothing missed`."""
    h = await make_backend()
    before = await h.backend.publish("feed:2", b"seen", "k1")
    positions = await h.backend.publish_online(["feed:2"], b"skipped?", "k2")
    if isinstance(h.backend, RedisChannelBackend):  # no presence: skipped, position gone
        assert positions == [None]
        assert await h.backend.history("feed:2", before) is None
    else:  # one process: every channel is online, resumable as usual
        [(position, payload)] = await h.backend.history("feed:2", before) or []
        assert (position, payload) == (positions[0], b"skipped?")


async def test_fan_outs_and_single_publishes_interleave_in_order_on_every_instance(
    make_backend: MakeBackend,
) -> None:
    """Each instance gets exactly its own channels' events, in offset order, however they
    were published: fan-outs (one message for all their channels, on Redis) between
    single publishes, online-only fan-outs, and channels held by no instance at all."""
    a = await make_backend()
    b = await make_backend() if isinstance(a.backend, RedisChannelBackend) else a
    mine, theirs, nobodys = ["feed:1", "feed:2"], ["feed:3"], ["feed:4", "feed:5"]
    for c in mine:
        await a.backend.subscribe(c)
    for c in theirs:
        await b.backend.subscribe(c)
    everyone = mine + theirs + nobodys
    await a.backend.publish_many(everyone, b"p1", "k1")
    await b.backend.publish("feed:1", b"solo", "k2")
    await b.backend.publish_online(everyone, b"p2", "k3")
    await a.backend.publish_each([("feed:2", b"e1", "k4"), ("feed:3", b"e2", "k5")])
    await a.backend.publish_many(everyone, b"p3", "k6")
    expected = {
        "feed:1": [b"p1", b"solo", b"p2", b"p3"],
        "feed:2": [b"p1", b"p2", b"e1", b"p3"],
        "feed:3": [b"p1", b"p2", b"e2", b"p3"],
    }
    await a.wait_for(8 if a is not b else 12)
    await b.wait_for(4 if a is not b else 12)
    for harness, channels in ((a, mine), (b, theirs)):
        for c in channels:
            got = [(p, payload) for ch, p, payload in harness.received if ch == c]
            assert [payload for _, payload in got] == expected[c]
            assert [int(p.offset) for p, _ in got] == [1, 2, 3, 4]
    if a is not b:
        assert {ch for ch, _, _ in a.received} == set(mine)
        assert {ch for ch, _, _ in b.received} == set(theirs)
        # Live, not caught up: a missed or reordered event would have made an instance
        # reconnect and read it from the history instead.
        for harness in (a, b):
            assert isinstance(harness.backend, RedisChannelBackend)
            assert harness.backend.reconnects == 1
