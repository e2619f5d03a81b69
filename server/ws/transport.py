"""uvicorn's WebSocket protocol, with transports that are released when a peer stops reading.

uvicorn only ever calls `transport.close()`, and asyncio's close waits until the write
buffer has drained: a peer that takes nothing (a full receive window, a frozen process, a
vanished host behind a silent network) holds its transport, its buffers and its file
descriptor until TCP itself gives up, which can take many minutes. Here every close is
followed, `ABORT_AFTER_S` later, by an abort with SO_LINGER 0 (an RST: the kernel drops
the socket and its buffers at once) unless the connection has ended by then. A peer that
reads its close frame ends the connection in that time; one that does not has no claim to
the memory it pins.

Every path that ends a socket goes through `close()`: the app returning (after its own
bounded close, see server/ws/endpoint.py), uvicorn's keepalive timeout (a dead peer cannot
answer a ping: ping_interval + ping_timeout, 40 s by default), its close-handshake timer
and its shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Any, cast

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

__all__ = ["ABORT_AFTER_S", "ReleasingWebSocketProtocol"]

# Long enough for a reading peer to take a close frame and the few frames before it over
# any real network (a round trip or two); short enough that a stuck one is let go within
# "a few seconds" of the close.
ABORT_AFTER_S = 2.0

# l_onoff=1, l_linger=0: close() resets the connection instead of lingering with its data.
_LINGER_RESET = struct.pack("ii", 1, 0)


class _ReleasingTransport:
    """The connection's transport; its close() is followed by an abort if need be."""

    def __init__(self, inner: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._inner = inner
        self._loop = loop
        self._timer: asyncio.TimerHandle | None = None
        self._lost = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def close(self) -> None:
        self._inner.close()
        if self._timer is None and not self._lost:
            self._timer = self._loop.call_later(ABORT_AFTER_S, self.abort)

    def abort(self) -> None:
        sock = self._inner.get_extra_info("socket")
        if sock is not None and sock.fileno() != -1:
            # OSError: gone already; the abort below is then a no-op too.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        self._inner.abort()

    def connection_lost(self) -> None:
        self._lost = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class ReleasingWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's default WebSocket protocol (websockets-sansio), whose transport is aborted
    when a close has not ended the connection within `ABORT_AFTER_S`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        releasing = _ReleasingTransport(cast(asyncio.Transport, transport), self.loop)
        super().connection_made(cast(asyncio.Transport, releasing))

    def connection_lost(self, exc: Exception | None) -> None:
        cast(_ReleasingTransport, self.transport).connection_lost()
        super().connection_lost(exc)
