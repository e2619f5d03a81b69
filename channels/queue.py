"""A per-socket send queue bounded in bytes, which never blocks the producer.

Pushes are fanned out to thousands of sockets from one backend reader; waiting on any one
socket would stall them all. So `put` never waits: a socket that falls a full bound behind
is marked overflowed, its pending frames are dropped, and the session closes it with 4001
(slow consumer). The client reconnects and resumes from the last offset it saw, which
costs less than buffering without limit for a client that may never catch up.

A queue may have a sink: a writer that takes a frame synchronously when the socket can
take it now. While nothing waits and the consumer is not sending a frame of its own,
`put` hands frames to the sink, so a socket that keeps up costs no queueing and no task
switch per frame; the queue (and its bound) holds only what a socket cannot take yet.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

__all__ = ["QueueClosed", "QueueLost", "QueueOverflowed", "SendQueue"]


class QueueClosed(Exception):
    """The queue was closed: the sender task should end."""


class QueueOverflowed(QueueClosed):
    """The consumer fell too far behind: close the socket with 4001."""


class QueueLost(QueueClosed):
    """Events of one of the socket's channels were lost on the way (its history is gone):
    close with 4000 so the client resumes and learns `recovered: false`."""


class SendQueue:
    """Frames waiting to be sent on one socket, bounded in bytes."""

    __slots__ = (
        "_busy",
        "_closed",
        "_frames",
        "_lost",
        "_max_bytes",
        "_overflowed",
        "_sink",
        "_size",
        "_waiter",
    )

    def __init__(self, max_bytes: int) -> None:
        """`max_bytes` is the socket's bound (PLAZA_WS_SEND_QUEUE_BYTES, with its reason)."""
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self._max_bytes = max_bytes
        # Made when a frame first has to wait (with a sink, most sockets never queue one):
        # an empty deque costs ~0.7 KB, on every idle socket.
        self._frames: deque[bytes] | None = None
        self._size = 0
        self._closed = False
        self._overflowed = False
        self._lost = False
        self._waiter: asyncio.Future[None] | None = None
        self._sink: Callable[[bytes], bool] | None = None
        # The consumer holds a frame from `get` it has not finished sending: a frame
        # written by the sink now would overtake it.
        self._busy = False

    def set_sink(self, sink: Callable[[bytes], bool] | None) -> None:
        """`sink(frame)` writes `frame` now and returns True, or returns False (the socket
        cannot take it now, the frame is queued instead). It must not await or raise."""
        self._sink = sink

    @property
    def size(self) -> int:
        """Bytes waiting to be sent."""
        return self._size

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    @property
    def overflowed(self) -> bool:
        return self._overflowed

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._frames) if self._frames is not None else 0

    def put(self, frame: bytes) -> bool:
        """Queue `frame`; False (and nothing queued) once closed or overflowed."""
        if self._closed:
            return False
        sink = self._sink
        if sink is not None and not self._frames and not self._busy and sink(frame):
            return True
        # A frame bigger than the bound still goes through on an empty queue (a subscribe
        # reply carrying a long history can be); the bound limits how far behind one gets.
        if self._frames and self._size + len(frame) > self._max_bytes:
            self.overflow()
            return False
        if self._frames is None:
            self._frames = deque()
        self._frames.append(frame)
        self._size += len(frame)
        self._wake()
        return True

    def overflow(self) -> None:
        """Mark the consumer as too slow: drop what is pending and close the queue."""
        self._overflowed = True
        self.close()

    def lose(self) -> None:
        """Some of this consumer's events cannot be delivered: drop what is pending and
        close the queue, so the session closes with 4000 and the client resumes."""
        if not self._closed:
            self._lost = True
        self.close()

    def close(self) -> None:
        """Drop pending frames; a waiting or later `get` raises."""
        self._closed = True
        self._frames = None
        self._size = 0
        self._wake()

    async def get(self) -> bytes:
        """The next frame, waiting for one; raises QueueClosed/QueueOverflowed at the end.

        The consumer sends each frame before asking for the next: until then the sink is
        not used (a call to `get` says the previous frame is sent)."""
        self._busy = False
        while not self._frames:
            if self._closed:
                if self._overflowed:
                    raise QueueOverflowed()
                raise QueueLost() if self._lost else QueueClosed()
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None
        assert self._frames is not None
        frame = self._frames.popleft()
        self._size -= len(frame)
        self._busy = True
        return frame

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
