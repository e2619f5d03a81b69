"""The per-socket send queue: bounded in bytes, never blocking the producer."""

from __future__ import annotations

import asyncio

import pytest

from channels.queue import QueueClosed, QueueOverflowed, SendQueue

DEFAULT_MAX_BYTES = 1024 * 1024  # the PLAZA_WS_SEND_QUEUE_BYTES default


async def test_frames_come_out_in_order_and_sizes_are_counted() -> None:
    queue = SendQueue(100)
    assert queue.put(b"a" * 10)
    assert queue.put(b"b" * 20)
    assert (len(queue), queue.size) == (2, 30)
    assert await queue.get() == b"a" * 10
    assert queue.size == 20
    assert await queue.get() == b"b" * 20
    assert (len(queue), queue.size) == (0, 0)


async def test_get_waits_for_a_put() -> None:
    queue = SendQueue(DEFAULT_MAX_BYTES)
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.put(b"x")
    assert await asyncio.wait_for(getter, 1) == b"x"


async def test_exceeding_the_bound_overflows_and_drops_pending() -> None:
    queue = SendQueue(100)
    assert queue.put(b"x" * 60)
    assert queue.put(b"x" * 40)  # exactly at the bound is fine
    assert not queue.overflowed
    assert not queue.put(b"y")
    assert queue.overflowed and queue.closed
    assert queue.size == 0 and len(queue) == 0  # the memory is released at once
    assert not queue.put(b"z")  # stays refused, cheaply
    with pytest.raises(QueueOverflowed):
        await queue.get()


async def test_a_big_frame_goes_through_an_empty_queue() -> None:
    queue = SendQueue(100)
    assert queue.put(b"r" * 500)
    assert not queue.overflowed
    assert not queue.put(b"p")  # but nothing may pile up behind it
    assert queue.overflowed


async def test_put_never_waits_for_the_reader() -> None:
    queue = SendQueue(DEFAULT_MAX_BYTES)
    frame = b"x" * 1024
    accepted = sum(queue.put(frame) for _ in range(2000))  # no reader at all
    assert accepted == DEFAULT_MAX_BYTES // 1024
    assert queue.overflowed


async def test_close_wakes_a_waiting_getter() -> None:
    queue = SendQueue(DEFAULT_MAX_BYTES)
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.close()
    with pytest.raises(QueueClosed) as info:
        await asyncio.wait_for(getter, 1)
    assert not isinstance(info.value, QueueOverflowed)
    assert not queue.put(b"late")


async def test_a_cancelled_getter_leaves_the_queue_usable() -> None:
    queue = SendQueue(DEFAULT_MAX_BYTES)
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    getter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await getter
    queue.put(b"x")
    assert await asyncio.wait_for(queue.get(), 1) == b"x"


def test_bound_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SendQueue(0)


class _Socket:
    """A sink: takes frames while `open`, in the order written."""

    def __init__(self) -> None:
        self.open = True
        self.written: list[bytes] = []

    def __call__(self, frame: bytes) -> bool:
        if self.open:
            self.written.append(frame)
        return self.open


async def test_a_sink_that_takes_frames_gets_them_without_queueing() -> None:
    queue, socket = SendQueue(100), _Socket()
    queue.set_sink(socket)
    assert queue.put(b"a") and queue.put(b"b")
    assert socket.written == [b"a", b"b"]
    assert (len(queue), queue.size) == (0, 0)


async def test_frames_a_sink_refuses_are_queued_and_later_ones_wait_behind_them() -> None:
    queue, socket = SendQueue(100), _Socket()
    queue.set_sink(socket)
    socket.open = False  # the transport is paused
    assert queue.put(b"a")
    socket.open = True
    # "a" waits in the queue: "b" must not overtake it through the sink.
    assert queue.put(b"b")
    assert socket.written == []
    assert await queue.get() == b"a"
    # The consumer is sending "a": "c" still queues behind it.
    assert queue.put(b"c")
    assert await queue.get() == b"b"
    assert await queue.get() == b"c"
    # The consumer asks for more: everything it held is sent, the sink takes over again.
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert queue.put(b"d")
    assert socket.written == [b"d"]
    getter.cancel()


async def test_the_bound_holds_for_what_a_sink_refuses() -> None:
    queue, socket = SendQueue(100), _Socket()
    queue.set_sink(socket)
    socket.open = False
    assert queue.put(b"x" * 60) and queue.put(b"x" * 40)
    assert not queue.put(b"y")
    assert queue.overflowed and socket.written == []


async def test_a_closed_queue_gives_nothing_to_its_sink() -> None:
    queue, socket = SendQueue(100), _Socket()
    queue.set_sink(socket)
    queue.close()
    assert not queue.put(b"a")
    assert socket.written == []
