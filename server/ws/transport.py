"""uvicorn's WebSocket protocol, with connections that are let go when a peer stops reading.

uvicorn only ever calls `transport.close()`, and a close does not release a peer that
takes nothing (a full receive window, a frozen process, a vanished host behind a silent
network) in either of two ways:

- asyncio's close waits until its own write buffer has drained, which it never does;
- once that buffer is empty, asyncio closes the socket, but the kernel keeps the
  connection, orphaned, with everything still in its send buffer (hundreds of KB), trying
  to deliver it until TCP gives up, which takes many minutes.

So here a close that has not ended the connection within `ABORT_AFTER_S` is turned into an
abort, and a connection that ends with unsent data in the kernel is kept open (on a
duplicate of its descriptor) for at most `ABORT_AFTER_S` to deliver it: a peer that reads
gets its close frame and a normal FIN; one that does not gets an RST (SO_LINGER 0), and
the kernel drops the connection and its buffers at once.

Every path that ends a socket goes through here: the app returning (after its own bounded
close, see server/ws/endpoint.py), uvicorn's keepalive timeout (a dead peer cannot answer
a ping: ping_interval + ping_timeout, 40 s by default), its close-handshake timer and its
shutdown.

It also offers the app a way to write a text frame without the ASGI machinery:
`DirectText`, in the scope's extensions under `DIRECT_TEXT` (see its docstring); and it
keeps less per idle socket (~5 KB): a list-backed receive inbox and write flag instead of
asyncio's Queue and Event (four deques between them), and the handshake's request and
response are let go once the handshake is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
import struct
import termios
from typing import Any, Protocol, cast

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

__all__ = ["ABORT_AFTER_S", "DIRECT_TEXT", "DirectText", "ReleasingWebSocketProtocol"]

# uvicorn logs an INFO line of its own per upgrade ("[accepted]", "403"), beside the access
# log's "websocket open" / "refused" (server/access.py): one line per event is enough, and
# in a reconnect storm formatting those lines cost 5% of the CPU. Its warnings and errors
# (an exception in the app, invalid UTF-8) still reach uvicorn's handlers.
_PROTOCOL_LOG = logging.getLogger("uvicorn.error.websocket")
_PROTOCOL_LOG.setLevel(logging.WARNING)

# The scope extension (ASGI's place for what a server offers beyond the spec) under which
# a socket's `DirectText` is found.
DIRECT_TEXT = "plaza.direct_text"

# Long enough for a reading peer to take a close frame and the frames before it over any
# real network (a few round trips); short enough that a stuck one is let go within "a few
# seconds" of the close.
ABORT_AFTER_S = 2.0
# How often a connection kept open to deliver its last bytes looks whether they are gone.
_DRAIN_POLL_S = 0.1

# l_onoff=1, l_linger=0: close() resets the connection instead of lingering with its data.
_LINGER_RESET = struct.pack("ii", 1, 0)


def _unsent(sock: Any) -> int:
    """Bytes in the kernel's send queue not yet acknowledged by the peer (Linux SIOCOUTQ);
    0 where that cannot be asked."""
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (OSError, ValueError):
        return 0
    return int(struct.unpack("i", raw)[0])


def _reset(sock: Any) -> None:
    # OSError: gone already; the close that follows is then a plain one.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)


class _ReleasingTransport:
    """The connection's transport; its close() is followed by an abort if need be."""

    def __init__(self, inner: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._inner = inner
        self._loop = loop
        # uvicorn calls these for every frame: bound once here, not found by __getattr__.
        self.write = inner.write
        self.is_closing = inner.is_closing
        self._timer: asyncio.TimerHandle | None = None
        self._lost = False
        self.aborted = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def close(self) -> None:
        self._inner.close()
        if self._timer is None and not self._lost:
            self._timer = self._loop.call_later(ABORT_AFTER_S, self.abort)

    def abort(self) -> None:
        sock = self._inner.get_extra_info("socket")
        if sock is not None and sock.fileno() != -1:
            _reset(sock)
        self.aborted = True
        self._inner.abort()

    def connection_lost(self) -> None:
        """Called before asyncio closes the socket: whatever the kernel still has to send
        gets `ABORT_AFTER_S` to reach the peer, on a descriptor of our own."""
        self._lost = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        sock = self._inner.get_extra_info("socket")
        if self.aborted or sock is None or sock.fileno() == -1 or not _unsent(sock):
            return
        held = socket.socket(fileno=os.dup(sock.fileno()))
        deadline = self._loop.time() + ABORT_AFTER_S

        def check() -> None:
            if _unsent(held) and self._loop.time() < deadline:
                self._loop.call_later(_DRAIN_POLL_S, check)
                return
            if _unsent(held):
                _reset(held)  # still not taken: RST, the kernel forgets it now
            held.close()  # else all delivered: the FIN follows the data

        self._loop.call_later(_DRAIN_POLL_S, check)


class Counter(Protocol):
    value: int


# FIN + text opcode; server frames are never masked (RFC 6455 5.1).
_TEXT = 0x81


class DirectText:
    """Writes one text frame of an open socket straight to its transport, or says it
    cannot (False) and leaves the frame to the ASGI `send`.

    A push goes to hundreds of sockets; through ASGI each copy pays four send wrappers
    (Litestar's, its exception middleware's, ours for access logging, the socket's), a
    message dict, a `Frame` object and its serialisation. Framing an unmasked text frame
    is a two-byte header, so it is done here, where the protocol's state is known: only
    while the handshake is done, no close was sent or received, the transport takes data
    without pausing (a paused one makes the caller queue, which bounds what a slow peer
    costs) and no extension is negotiated (permessage-deflate compresses per connection,
    so frames must go through websockets then).
    """

    __slots__ = ("_protocol", "frames", "tally")

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol
        self.frames = 0  # written here, for the socket's access log line
        self.tally: Counter | None = None  # the process-wide frame count, if any

    def __call__(self, payload: bytes) -> bool:
        p = self._protocol
        conn = p.conn
        if (
            p.close_sent
            or p.disconnected
            or not p.handshake_complete
            or conn.state is not State.OPEN
            or conn.extensions
            or not p.writable.is_set()
            or p.transport.is_closing()
        ):
            return False
        n = len(payload)
        if n < 126:
            header = bytes((_TEXT, n))
        elif n < 65536:
            header = bytes((_TEXT, 126)) + n.to_bytes(2, "big")
        else:
            header = bytes((_TEXT, 127)) + n.to_bytes(8, "big")
        p.transport.write(header + payload)
        self.frames += 1
        if self.tally is not None:
            self.tally.value += 1
        return True


class _Inbox:
    """What uvicorn uses its receive queue for (put_nowait, get, empty; one reader, the
    app's receive), without asyncio.Queue's three deques (~2 KB on every socket)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> Any:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None
        return self._items.pop(0)  # a few messages at most: the app reads as they come


class _Flag:
    """asyncio.Event's set / clear / is_set / wait, with its waiters made only when a send
    waits (a paused transport), not on every socket."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True


class ReleasingWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's default WebSocket protocol (websockets-sansio), whose connections are
    reset when a close has not delivered everything within `ABORT_AFTER_S`, which offers
    the app a `DirectText` and keeps less per socket."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger = _PROTOCOL_LOG
        self.queue = cast(Any, _Inbox())
        writable = _Flag()
        writable.set()
        self.writable = cast(Any, writable)

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete and getattr(self, "response", None) is not None:
            # Read only while handshaking: the socket need not carry them for its life.
            released = cast(Any, self)
            request = released.request
            if request is not None:
                # websockets' parser generator keeps the request in a local for the
                # connection's life: emptied here, its headers (~2.6 KB) go all the same.
                request.headers.clear()
            released.request = None
            released.response = None

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        # The app's task is created but has not run yet: it finds the extension.
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][DIRECT_TEXT] = DirectText(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        releasing = _ReleasingTransport(cast(asyncio.Transport, transport), self.loop)
        super().connection_made(cast(asyncio.Transport, releasing))

    def connection_lost(self, exc: Exception | None) -> None:
        cast(_ReleasingTransport, self.transport).connection_lost()
        super().connection_lost(exc)
