"""GET /api/v1/ws: the WebSocket endpoint, the thin asyncio driver of a `SessionCore`.

The driver only moves bytes and time: a reader loop feeds frames to the core and waits
no longer than the core's next deadline, one writer task drains the subscriber's send
queue into the socket and tells the core when each write starts and ends, and whoever
learns that the session ends (reader, writer, registry) has the core's decision carried
out once, by one task.

Under `plaza serve` the socket's `DirectText` (server/ws/transport.py) is the send
queue's sink: a frame for a socket that keeps up is written where it is produced (the
hub's fan-out loop, a reply), with no task switch; the writer task only drains what
a socket could not take at once, and only those writes can stall.

What releases a socket (uvicorn 0.54, websockets-sansio, its default): a send
waits while the transport's buffer is above its high-water mark, so a peer that takes
nothing blocks our writes and our close frame forever, and uvicorn itself only ever
calls `transport.close()`, which waits for that buffer to drain. So a close gets
`Timeouts.close` to reach the transport; after that, and on a send stall, the driver
stops writing and returns from the handler without raising (an exception would make
Litestar try to send its own close frame, which would block the same way). The session
is then gone: its subscriptions, its queue and its place in the per-user limit. The
transport under it is aborted 2 s after uvicorn's close (server/ws/transport.py, the
protocol `plaza serve` runs), so its buffers and descriptor go too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, cast

from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.handlers import WebsocketRouteHandler

from channels.hub import Subscriber
from channels.queue import QueueClosed
from channels.tasks import cancel_and_wait
from domain.errors import Unauthorized
from server.container import Services
from server.dependencies import ServicesDep, parse_bearer
from server.ws.frames import CloseCode, encode_close_soon
from server.ws.session import ABNORMAL, Close, SessionCore, Timeouts
from server.ws.transport import DIRECT_TEXT, DirectText

__all__ = ["Socket", "SocketSession", "make_ws_endpoint", "origin_allowed"]

log = logging.getLogger("plaza.ws")

# Closing before accepting makes the ASGI server answer the upgrade with HTTP 403.
_REFUSED = 1008
# How often a planned close looks whether close_soon has left the queue; it runs once
# per socket, at shutdown, so polling costs nothing worth an event.
_FLUSH_POLL_S = 0.01


class Socket(Protocol):
    """What the driver uses of a WebSocket: Litestar's, or a test's fake."""

    async def accept(self) -> None: ...

    @property
    def receive(self) -> Callable[[], Awaitable[Mapping[str, Any]]]: ...

    async def send_data(self, data: str, mode: Any) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


# What a send to a socket that is gone raises: Litestar's own check, uvicorn's
# ClientDisconnected (an OSError), and uvicorn's RuntimeError for a send after it closed
# the socket itself (its keepalive timeout does so without telling the app).
_GONE = (WebSocketDisconnect, OSError, RuntimeError)


class SocketSession:
    """One socket driven through its `SessionCore`; a `LiveSession` of the registry."""

    def __init__(
        self,
        socket: Socket,
        services: Services,
        *,
        token: str | None,
        timeouts: Timeouts | None = None,
        direct: Callable[[bytes], bool] | None = None,
    ) -> None:
        """`token`: the upgrade's bearer token (None without a header, "" if unusable);
        `direct`: writes a text frame now if the socket can take it (a `DirectText`)."""
        self._socket = socket
        self._direct = direct
        self._services = services
        self._token = token
        self._loop = asyncio.get_running_loop()
        self._timeouts = timeouts or Timeouts.of(services.settings)
        self._subscriber = Subscriber(services.settings.ws_send_queue_bytes)
        self._core = SessionCore(
            services,
            self._subscriber,
            now=self._loop.time(),
            wall=time.time,
            admit=lambda user_id: services.sessions.add_user(self, user_id),
            timeouts=self._timeouts,
        )
        self._writer: asyncio.Task[None] | None = None
        # The reader's wait for a frame, while it waits: rescheduled to wake it early.
        self._timer: asyncio.Timeout | None = None
        self._closing: asyncio.Future[None] | None = None
        self._done = False

    # LiveSession (registry) --------------------------------------------------------------
    @property
    def user_id(self) -> int | None:
        return self._core.user_id

    @property
    def session_id(self) -> str | None:
        return self._core.session_id

    async def close(self, code: int, reason: str, *, warn: bool = False) -> None:
        """Logout, shutdown: returns once the close is carried out (bounded in time)."""
        decision = self._core.close(code, reason, warn=warn)
        if self._writer is not None and not self._done:
            await self._finish(decision)

    # the socket's life ---------------------------------------------------------------------
    async def run(self) -> None:
        await self._socket.accept()
        self._subscriber.queue.set_sink(self._direct)
        registry = self._services.sessions
        registry.track(self)
        self._writer = asyncio.create_task(self._write_loop(), name="ws-writer")
        try:
            decision = await self._core.open(self._token, self._loop.time())
            await self._finish(decision or await self._read_loop())
        finally:
            self._done = True
            await registry.remove(self)
            await self._services.hub.detach(self._subscriber)
            await cancel_and_wait(self._writer)

    async def _read_loop(self) -> Close:
        core = self._core
        while True:
            decision = core.on_timer(self._loop.time())
            if decision is not None:
                return decision
            try:
                async with asyncio.timeout_at(core.next_deadline()) as timer:
                    self._timer = timer
                    message = await self._socket.receive()
            except TimeoutError:
                continue  # a deadline, or a wake-up: on_timer tells which
            except WebSocketDisconnect:
                return core.on_disconnect(CloseCode.NORMAL)
            finally:
                self._timer = None
            kind = message["type"]
            if kind == "websocket.disconnect":
                return core.on_disconnect(int(message.get("code") or 1005))
            if kind == "websocket.receive":
                text = message.get("text")
                data = text if text is not None else message.get("bytes") or b""
                decision = await core.on_frame(data, self._loop.time())
                if decision is not None:
                    return decision

    async def _write_loop(self) -> None:
        core, get, send = self._core, self._subscriber.get, self._socket.send_data
        direct = self._direct
        try:
            while True:
                frame = await get()
                if direct is not None and direct(frame):
                    continue  # the socket took it at once: nothing can stall
                core.write_started(self._loop.time())
                self._rearm()
                try:
                    await send(frame.decode(), "text")
                finally:
                    core.write_ended()
        except QueueClosed as end:
            if core.on_queue_closed(end) is not None:
                self._wake_reader()
        except _GONE:
            core.on_write_failed()
            self._wake_reader()

    # closing -----------------------------------------------------------------------------
    async def _finish(self, decision: Close) -> None:
        """Carry out the core's decision, once, whoever asks; wait until it is done."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._carry_out(decision))
        await asyncio.shield(self._closing)

    async def _carry_out(self, decision: Close) -> None:
        queue = self._subscriber.queue
        if decision.warn and self._subscriber.send(
            encode_close_soon(CloseCode(decision.code), decision.reason)
        ):
            deadline = self._loop.time() + self._timeouts.flush
            while queue.size and self._loop.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(_FLUSH_POLL_S)
        queue.close()  # the writer ends after the frame it is writing, if any
        if decision.abort:
            if decision.code == ABNORMAL:  # not when the peer closed: that is no news
                log.info("socket dropped without a close frame: %s", decision.reason)
        elif not await self._send_close(decision):
            log.info(
                "socket abandoned: close %d not taken within %.1f s",
                decision.code,
                self._timeouts.close,
            )
        assert self._writer is not None
        self._writer.cancel()
        self._wake_reader()

    async def _send_close(self, decision: Close) -> bool:
        """The close frame, after the writer's last frame; False if the peer does not take
        them within the close timeout (the socket is then abandoned)."""
        assert self._writer is not None
        try:
            async with asyncio.timeout(self._timeouts.close):
                await asyncio.wait({self._writer})
                await self._socket.close(decision.code, decision.reason)
        except TimeoutError:
            return False
        except _GONE:
            pass  # closed already
        return True

    # waking the reader -------------------------------------------------------------------
    def _wake_reader(self) -> None:
        timer = self._timer
        if timer is not None and not timer.expired():
            timer.reschedule(self._loop.time())

    def _rearm(self) -> None:
        """A write started: the stall deadline may come before the reader's."""
        timer, deadline = self._timer, self._core.next_deadline()
        if timer is None or timer.expired() or deadline is None:
            return
        when = timer.when()
        if when is None or deadline < when:
            timer.reschedule(deadline)


def _header(scope: Mapping[str, Any], name: bytes) -> str | None:
    """One request header, read from the scope: Litestar's parsed Headers (~2 KB) would
    stay with the socket for its whole life, for three look-ups at the upgrade."""
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _bearer(scope: Mapping[str, Any]) -> str | None:
    header = _header(scope, b"authorization")
    if header is None:
        return None
    try:
        return parse_bearer(header)
    except Unauthorized:
        return ""  # present but unusable: closed with 4401 like a bad token


def origin_allowed(origin: str, scope: Mapping[str, Any], allowed: frozenset[str]) -> bool:
    """Browsers send Origin; it must be on the allow-list or be this server itself.
    Clients without Origin (SDKs, servers) are not subject to cross-site attacks."""
    origin = origin.rstrip("/").lower()
    if origin in allowed or "*" in allowed:
        return True
    host = (_header(scope, b"host") or "").lower()
    scheme = "https" if scope.get("scheme") == "wss" else "http"
    return bool(host) and origin == f"{scheme}://{host}"


def make_ws_endpoint(allowed_origins: frozenset[str]) -> WebsocketRouteHandler:
    @websocket("/ws", name="ws")
    async def ws_endpoint(socket: WebSocket[Any, Any, Any], services: ServicesDep) -> None:
        scope = socket.scope
        origin = _header(scope, b"origin")
        if origin is not None and not origin_allowed(origin, scope, allowed_origins):
            await socket.close(code=_REFUSED, reason="origin not allowed")
            return
        direct = cast("DirectText | None", (scope.get("extensions") or {}).get(DIRECT_TEXT))
        token = _bearer(scope)
        # Read: they need not stay with the socket (~1.5 KB), but for X-Forwarded-For,
        # which the access log reads when the socket is accepted (server/proxies.py).
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k == b"x-forwarded-for"]
        await SocketSession(socket, services, token=token, direct=direct).run()

    return ws_endpoint
