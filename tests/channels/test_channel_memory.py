"""What only the memory backend promises: its caps, its epochs and its delivery task."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from channels.backend import Position
from channels.memory import MemoryBackend


def _ignore(channel: str, position: Position, payload: bytes) -> None:
    pass


async def test_a_new_process_has_new_epochs() -> None:
    one, two = MemoryBackend(), MemoryBackend()
    before = await one.publish("public", b"{}")
    assert (await two.current("public")).epoch != before.epoch
    assert await two.history("public", Position("0", before.epoch)) is None


async def test_channels_get_their_own_epochs_and_offsets() -> None:
    backend = MemoryBackend()
    a = await backend.publish("a", b"{}")
    b = await backend.publish("b", b"{}")
    assert a.offset == b.offset == "1"
    assert a.epoch != b.epoch


async def test_history_keeps_only_the_newest_events() -> None:
    backend = MemoryBackend(history_size=3)
    positions = [await backend.publish("c", b"%d" % i) for i in range(5)]
    assert [o for o, _, _ in backend._streams["c"].held()] == [3, 4, 5]
    assert await backend.history("c", positions[1]) == [
        (positions[2], b"2"),
        (positions[3], b"3"),
        (positions[4], b"4"),
    ]


async def test_least_recently_used_idle_channel_is_evicted_and_gets_a_new_epoch() -> None:
    backend = MemoryBackend(max_channels=2)
    old = await backend.publish("a", b"{}")
    await backend.publish("b", b"{}")
    await backend.current("a")  # touch "a": "b" is now the least recently used
    await backend.publish("c", b"{}")
    assert backend.channel_count == 2
    assert set(backend._streams) == {"a", "c"}
    assert (await backend.current("a")) == old
    reborn = await backend.current("b")
    assert reborn.offset == "0"
    assert await backend.history("b", Position("0", reborn.epoch)) == []


async def test_subscribed_channels_are_never_evicted() -> None:
    backend = MemoryBackend(max_channels=1)
    await backend.subscribe("kept")
    kept = await backend.publish("kept", b"{}")
    await backend.publish("x", b"{}")
    await backend.publish("y", b"{}")
    assert await backend.current("kept") == kept
    assert "x" not in backend._streams


async def test_byte_budget_bounds_memory_across_channels() -> None:
    backend = MemoryBackend(max_bytes=1000)
    for i in range(50):
        await backend.publish(f"post:{i}", b"x" * 100)
    assert backend._bytes <= 1000
    assert sum(s.size for s in backend._streams.values()) == backend._bytes
    # One subscribed busy channel cannot grow past the budget either: it sheds old events.
    await backend.subscribe("busy")
    positions = [await backend.publish("busy", b"y" * 100) for _ in range(30)]
    assert backend._bytes <= 1000
    assert await backend.history("busy", positions[0]) is None
    assert await backend.history("busy", positions[-2]) == [(positions[-1], b"y" * 100)]


class Recorder:
    """A Listener that calls `on_event` for each delivery."""

    def __init__(self, on_event: Callable[[str, Position, bytes], None]) -> None:
        self.on_event = on_event

    def deliver(self, channel: str, position: Position, payload: bytes) -> None:
        self.on_event(channel, position, payload)

    def lost(self, channel: str) -> None:
        raise AssertionError("a memory backend never loses a subscribed channel")


async def test_events_are_delivered_by_a_task_not_inside_publish() -> None:
    received: list[str] = []
    backend = MemoryBackend()
    await backend.start(Recorder(lambda c, p, b: received.append(p.offset)))
    await backend.subscribe("c")
    await backend.publish("c", b"{}")
    assert received == []  # the publisher did not run the fan-out
    await asyncio.sleep(0)
    assert received == ["1"]
    await backend.stop()


async def test_a_failing_consumer_does_not_stop_delivery(caplog: pytest.LogCaptureFixture) -> None:
    received: list[bytes] = []

    def consumer(channel: str, position: Position, payload: bytes) -> None:
        if payload == b"bad":
            raise RuntimeError("boom")
        received.append(payload)

    backend = MemoryBackend()
    await backend.start(Recorder(consumer))
    await backend.subscribe("c")
    await backend.publish("c", b"bad")
    await backend.publish("c", b"good")
    for _ in range(3):
        await asyncio.sleep(0)
    assert received == [b"good"]
    assert "channel listener failed" in caplog.text
    await backend.stop()


async def test_stop_ends_the_delivery_task_and_start_twice_is_refused() -> None:
    backend = MemoryBackend()
    await backend.start(Recorder(_ignore))
    task = backend._task
    with pytest.raises(RuntimeError):
        await backend.start(Recorder(_ignore))
    await backend.stop()
    assert task is not None and task.done()
    await backend.stop()  # idempotent


def test_caps_must_be_positive() -> None:
    with pytest.raises(ValueError):
        MemoryBackend(history_size=0)
