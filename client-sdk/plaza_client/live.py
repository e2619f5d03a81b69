"""LiveSession: one WebSocket session that survives reconnects without losing events.

Frames in and out follow docs/protocol.md: requests `{"id", "op", ...}` get exactly one reply
with the same id; pushes (no id) become LiveEvents. Which events to deliver, and what to
send on resubscribe, is decided by the pure ResumeState; this module only moves frames,
reconnects and keeps the socket authenticated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

import msgspec
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from plaza_client._resync import ResyncFilter, fetch_resync_page
from plaza_client._router import FrameRouter, Subscription, consume_exception
from plaza_client._socket import LINK_DEFAULTS, keep_token_fresh, open_socket, serve_heartbeat
from plaza_client.backoff import LATER_FLOOR, Backoff, CloseAction, close_action
from plaza_client.errors import (
    AuthError,
    ConnectionLost,
    PayloadTooLarge,
    PlazaError,
    ProtocolError,
    SessionClosed,
)
from plaza_client.events import RESYNC, LiveEvent, Position, Resync
from plaza_client.models import Page, TokenPair, page_from_ws
from plaza_client.resume import ResumeState

if TYPE_CHECKING:
    from plaza_client.client import AsyncClient

__all__ = ["LiveSession", "Subscription"]

log = logging.getLogger("plaza_client.live")

# The server closes the socket with 1009 on a frame over 64 KiB; refusing it here turns a
# session-ending mistake into an exception for the one call.
MAX_OUTGOING_FRAME = 64 * 1024
# A connection that stayed up this long was healthy: the next drop starts the backoff
# schedule over instead of continuing from where an earlier outage left it.
STABLE_AFTER_S = 10.0
# How long a call waits for its reply (and for a reconnect, if the socket is down).
DEFAULT_CALL_TIMEOUT_S = 30.0

_END = object()


class LiveSession:
    """`async with client.live() as live:` — subscribe, iterate events, call ops.

    Reconnects by itself (network loss, close codes 4000-4499; refreshing the token first
    on 4401) with exponential backoff and full jitter, re-subscribes every channel from
    the last delivered position, and yields a `resync` event when the server cannot fill
    the gap. Iteration raises SessionClosed when the session ends for good.
    """

    def __init__(
        self,
        client: AsyncClient,
        *,
        backoff: Backoff | None = None,
        call_timeout: float = DEFAULT_CALL_TIMEOUT_S,
        fetch_on_resync: bool = True,
        **link: Any,
    ) -> None:
        unknown = set(link) - set(LINK_DEFAULTS)
        if unknown:
            raise TypeError(f"unknown LiveSession options: {sorted(unknown)}")
        self._client = client
        self._link = {**LINK_DEFAULTS, **link}
        self._backoff = backoff or Backoff()
        self.call_timeout = call_timeout
        self.fetch_on_resync = fetch_on_resync
        self.state = ResumeState()
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        self._router = FrameRouter(self.state, self._events)
        self._resync_filter = ResyncFilter()
        self._ws: ClientConnection | None = None
        self._ws_token: str | None = None
        self._connected = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._failure: PlazaError | None = None
        self.session_id: str | None = None
        self.close_code: int | None = None
        self.close_reason: str = ""
        self.reconnects = 0
        self._last_frame = time.monotonic()
        # A resync event taken off the queue whose page is still being fetched: if the
        # caller stops waiting (a timeout cancels __anext__), the next call delivers it.
        self._resync_held: LiveEvent | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> LiveSession:
        await self.connect()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the first connection; its failure is raised here, later ones retried."""
        ws = await self._open()
        self._client.transport.add_token_listener(self._on_tokens)
        self._spawn(self._supervise(ws))
        self._spawn(keep_token_fresh(self._client.transport))

    async def close(self) -> None:
        """End the session (close code 1000); iteration then stops cleanly."""
        if self._closing:
            return
        self._closing = True
        self._client.transport.remove_token_listener(self._on_tokens)
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close(1000)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._finish(SessionClosed(1000, "closed by the client"))

    @property
    def connected(self) -> bool:
        return self._ws is not None and self._connected.is_set()

    @property
    def positions(self) -> dict[str, Position]:
        """Last delivered position per channel: save it to resume in another process
        with `subscribe(channel, since=...)`."""
        out: dict[str, Position] = {}
        for channel in self.state.channels:
            position = self.state.position(channel)
            if position is not None:
                out[channel] = position
        return out

    # -- public ops ----------------------------------------------------------------------

    async def subscribe(self, channel: str, since: Position | None = None) -> Subscription:
        """Subscribe (and keep subscribed across reconnects). Missed events recovered via
        `since` are delivered through the event stream, before live ones."""
        if self._failure is not None:
            raise self._failure
        ready = self._router.ready.get(channel)
        if ready is None or (ready.done() and (ready.cancelled() or ready.exception())):
            self.state.add(channel, since)
            ready = asyncio.get_running_loop().create_future()
            ready.add_done_callback(consume_exception)
            self._router.ready[channel] = ready
            if self.connected and not self.state.pending(channel):
                await self._send_subscribe(channel)
        return await asyncio.wait_for(asyncio.shield(ready), self.call_timeout)

    async def unsubscribe(self, channel: str) -> None:
        self.state.remove(channel)
        self._resync_filter.forget(channel)
        ready = self._router.ready.pop(channel, None)
        if ready is not None and not ready.done():
            ready.set_exception(PlazaError("unsubscribed before confirmed", code="unsubscribed"))
        ws = self._ws
        if ws is not None and self._connected.is_set():
            with contextlib.suppress(PlazaError, TimeoutError):
                await self._request(ws, "unsubscribe", {"channel": channel}, self.call_timeout)

    async def call(self, op: str, /, **args: Any) -> Any:
        """Send any protocol op and return its `result`; `ok: false` raises the matching
        PlazaError. A reply lost to a dropped socket raises ConnectionLost."""
        if op == "subscribe":
            since = args.get("since")
            if isinstance(since, dict):
                since = Position(str(since["offset"]), str(since["epoch"]))
            return await self.subscribe(args["channel"], since)
        if op == "unsubscribe":
            return await self.unsubscribe(args["channel"])
        ws = await self._wait_connected()
        return await self._request(ws, op, args, self.call_timeout)

    async def ping(self) -> None:
        await self.call("ping")

    async def page(self, op: str, item_type: type[Any], **args: Any) -> Page[Any]:
        """A `*.page` / `search` op's result as a typed Page (e.g. `feed.page`, Post)."""
        return page_from_ws(await self.call(op, **args), item_type)

    # -- iteration -----------------------------------------------------------------------

    def __aiter__(self) -> LiveSession:
        return self

    async def __anext__(self) -> LiveEvent:
        while True:
            if self._resync_held is not None:
                item: Any = self._resync_held
            else:
                item = await self._events.get()
            if item is _END:
                self._events.put_nowait(_END)  # every later call ends too
                if self._failure is not None:
                    raise self._failure
                raise StopAsyncIteration
            event: LiveEvent = item
            if event.type == RESYNC and self.fetch_on_resync:
                self._resync_held = event
                await self._fill_resync(event)
                self._resync_held = None
            elif self._resync_filter.is_duplicate(event):
                continue
            return event

    # -- connection ----------------------------------------------------------------------

    async def _open(self) -> ClientConnection:
        ws, token = await open_socket(self._client, self._link)
        self._ws_token = token
        return ws

    async def _supervise(self, ws: ClientConnection) -> None:
        try:
            await self._reconnect_loop(ws)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never leave iterators waiting on a dead supervisor
            log.exception("live session supervisor failed")
            self._finish(ProtocolError(f"live session failed: {exc!r}"))

    async def _reconnect_loop(self, ws: ClientConnection | None) -> None:
        loop = asyncio.get_running_loop()
        must_refresh, floor = False, 0.0
        while not self._closing:
            if ws is None:
                await asyncio.sleep(self._backoff.next_delay(floor))
                try:
                    if must_refresh:
                        await self._client.transport.refresh(stale_access_token=self._ws_token)
                        must_refresh = False
                    ws = await self._open()
                    self.reconnects += 1
                except PlazaError as exc:
                    if not exc.retryable:
                        self._finish(self._fatal(exc))
                        return
                    log.info("reconnect failed (%s); retrying", exc)
                    floor = getattr(exc, "retry_after", None) or 0.0
                    continue
            started = loop.time()
            code, reason = await self._serve(ws)
            ws = None
            if self._closing:
                return
            if loop.time() - started >= STABLE_AFTER_S:
                self._backoff.reset()
            action = close_action(code)
            log.info("socket closed (%s %s): %s", code, reason, action.value)
            if action is CloseAction.STOP:
                self._finish(SessionClosed(code, reason))
                return
            must_refresh = action is CloseAction.REFRESH_THEN_RECONNECT
            floor = LATER_FLOOR if action is CloseAction.RECONNECT_LATER else 0.0

    def _fatal(self, exc: PlazaError) -> PlazaError:
        if isinstance(exc, AuthError):
            closed = SessionClosed(4401, f"re-authentication failed: {exc}")
            closed.__cause__ = exc
            return closed
        return exc

    async def _serve(self, ws: ClientConnection) -> tuple[int | None, str]:
        """Run one connection until it closes; returns its close code and reason."""
        self._ws = ws
        self._last_frame = time.monotonic()
        heartbeat = asyncio.ensure_future(
            serve_heartbeat(
                ws,
                lambda: self._last_frame,
                self._ping,
                idle_after=self._link["idle_ping_after"],
                reply_within=self._link["app_ping_timeout"],
            )
        )
        try:
            # Connected first, so a subscribe() racing this loop sends its own frame; the
            # pending flag keeps the two from sending the same channel twice.
            self._connected.set()
            for channel in self.state.channels:
                if channel in self.state and not self.state.pending(channel):
                    await self._send_subscribe(channel)
            async for raw in ws:
                self._last_frame = time.monotonic()
                self._router.on_frame(raw)
        except ConnectionClosed as exc:
            log.debug("connection ended: %r", exc)
        except Exception:  # a bug on our side must not end the session: log, reconnect
            log.exception("live session reader failed; reconnecting")
            ws.transport.abort()
        finally:
            heartbeat.cancel()
            self._connected.clear()
            self._ws = None
            self.state.connection_lost()
            self._router.fail_pending(ConnectionLost())
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.wait_closed(), self._link["close_timeout"])
        code = ws.close_code
        self.close_code, self.close_reason = code, ws.close_reason or ""
        return code, self.close_reason

    async def _ping(self, ws: ClientConnection, reply_within: float) -> None:
        await self._request(ws, "ping", {}, reply_within)

    async def _wait_connected(self) -> ClientConnection:
        deadline = asyncio.get_running_loop().time() + self.call_timeout
        while True:
            if self._failure is not None:
                raise self._failure
            if self._closing:
                raise SessionClosed(1000, "closed by the client")
            ws = self._ws
            if ws is not None and self._connected.is_set():
                return ws
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise ConnectionLost("not connected (reconnecting)")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._connected.wait(), remaining)

    # -- frames --------------------------------------------------------------------------

    async def _request(
        self, ws: ClientConnection, op: str, args: dict[str, Any], reply_within: float | None
    ) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        request_id = self._router.expect(op, future)
        try:
            frame = msgspec.json.encode({"id": request_id, "op": op, **args})
            if len(frame) > MAX_OUTGOING_FRAME:
                raise PayloadTooLarge(
                    f"{op} frame is {len(frame)} bytes; the server allows {MAX_OUTGOING_FRAME}",
                    code="frame_too_large",
                )
            await ws.send(frame.decode())
            return await asyncio.wait_for(future, reply_within)
        except (PlazaError, TimeoutError):
            raise
        except Exception as exc:  # the socket closed under the send
            raise ConnectionLost() from exc
        finally:
            self._router.forget(request_id)

    async def _send_subscribe(self, channel: str) -> None:
        ws = self._ws
        if ws is None:
            return
        args = self.state.subscribe_args(channel)
        request_id = self._router.expect("subscribe", channel=channel)
        await ws.send(msgspec.json.encode({"id": request_id, "op": "subscribe", **args}).decode())

    # -- tokens --------------------------------------------------------------------------

    def _on_tokens(self, tokens: TokenPair | None) -> None:
        # A refresh (by REST or by us) minted a new access token: extend the socket's
        # session with it, so it is not closed with 4401 when the old one expires.
        if tokens is not None and self.connected and tokens.access_token != self._ws_token:
            self._spawn(self._reauth(tokens.access_token))

    async def _reauth(self, token: str) -> None:
        ws = self._ws
        if ws is None:
            return
        try:
            result = await self._request(ws, "auth", {"token": token}, self.call_timeout)
        except (PlazaError, TimeoutError) as exc:
            log.info("re-auth failed (%s); a 4401 close will trigger a refresh", exc)
            return
        self._ws_token = token
        if isinstance(result, dict) and isinstance(result.get("session_id"), str):
            self.session_id = result["session_id"]

    # -- helpers -------------------------------------------------------------------------

    async def _fill_resync(self, event: LiveEvent) -> None:
        data = event.data
        if not isinstance(data, Resync) or data.page is not None or data.error is not None:
            return
        try:
            data.page = await fetch_resync_page(self._client, event.channel)
        except PlazaError as exc:
            data.error = exc
        self._resync_filter.remember(event.channel, data.page)

    def _finish(self, failure: PlazaError) -> None:
        """End the event stream; a client-side close (1000) ends it without an error."""
        if self._failure is None and not (isinstance(failure, SessionClosed) and self._closing):
            self._failure = failure
        if isinstance(failure, SessionClosed):
            self.close_code, self.close_reason = failure.close_code, failure.reason
        self._router.fail_ready(failure)
        self._router.fail_pending(failure)
        self._connected.set()  # wake waiters: they see the failure (or the close)
        self._events.put_nowait(_END)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
