"""One WebSocket session: authentication, requests and replies, subscriptions and pushes.

Replies and pushes share the socket's bounded send queue, written by one writer task, so a
subscribe reply always precedes the live pushes that follow it and a slow reader is closed
with 4001 instead of growing the server. Requests are handled one at a time per socket:
replies come back in order and one socket cannot occupy more than one database connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any

from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect

from channels.hub import Subscriber, SubscriberClosed
from channels.queue import QueueClosed, QueueOverflowed
from domain import channel_names
from domain.errors import DomainError, Unauthorized
from domain.services.auth import Principal
from domain.views import MeView
from server.container import Services
from server.dependencies import parse_bearer
from server.ratelimit import TokenBucket
from server.ws import ops
from server.ws.actions import ACTIONS, READS
from server.ws.frames import CloseCode, ErrorCode, encode_close_soon, encode_error, encode_reply

log = logging.getLogger("plaza.ws")

# Heartbeat hint for clients: uvicorn pings every 20 s and drops a peer that has not
# answered 20 s later, so a dead peer is gone within ~40 s (the protocol promises ~45 s).
HEARTBEAT_S = 20
# A client that sends this many frames in a row after being told `rate_limited` (with no
# accepted frame in between) is not backing off: close with 4008.
RATE_LIMIT_STRIKES = 50
# Before closing for a planned reason, give the writer this long to flush close_soon.
FLUSH_SECONDS = 1.0
# Long enough for a client to refresh an expired token on a slow mobile link, short enough
# that unauthenticated sockets cannot pile up.
AUTH_TIMEOUT_S = 10.0
# 20 frames/s is far above what a person tapping a screen sends, yet a client flooding the
# socket is cut off within seconds; a burst of 50 lets a reconnecting client resubscribe
# to its channels and re-send queued actions at once.
INBOUND_RATE = 20.0
INBOUND_BURST = 50.0
# A well-behaved client sends no invalid frame; a few come from bugs, so the socket stays
# open for them. More than 10 in a minute is a broken or hostile client: close with 4500.
INVALID_FRAMES_LIMIT = 10
INVALID_FRAMES_WINDOW_S = 60.0


class InvalidFrameCounter:
    """Counts invalid frames in a sliding window; more than `limit` is a violation."""

    __slots__ = ("_clock", "_limit", "_stamps", "_window")

    def __init__(
        self,
        limit: int = INVALID_FRAMES_LIMIT,
        window: float = INVALID_FRAMES_WINDOW_S,
        *,
        clock: Any = time.monotonic,
    ) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        # Never more than limit + 1 stamps: memory per socket stays constant.
        self._stamps: deque[float] = deque(maxlen=limit + 1)

    def record(self) -> bool:
        """Count one invalid frame now; True when that makes more than `limit` in the window."""
        now = self._clock()
        self._stamps.append(now)
        while self._stamps and self._stamps[0] <= now - self._window:
            self._stamps.popleft()
        return len(self._stamps) > self._limit


class Session:
    def __init__(self, socket: WebSocket[Any, Any, Any], services: Services) -> None:
        self._socket = socket
        self._services = services
        self._subscriber = Subscriber(services.settings.ws_send_queue_bytes)
        self._principal: Principal | None = None
        self._closed = False
        self._bucket = TokenBucket(INBOUND_RATE, INBOUND_BURST)
        self._strikes = 0
        self._invalid = InvalidFrameCounter()
        self._loop = asyncio.get_running_loop()
        self._auth_deadline = self._loop.time() + AUTH_TIMEOUT_S

    # LiveSession (registry) -------------------------------------------------------------
    @property
    def user_id(self) -> int | None:
        return None if self._principal is None else self._principal.user_id

    @property
    def session_id(self) -> str | None:
        return None if self._principal is None else self._principal.session_id

    async def close(self, code: int, reason: str, *, warn: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        if warn and self._subscriber.send(encode_close_soon(CloseCode(code), reason)):
            deadline = self._loop.time() + FLUSH_SECONDS
            # Polling is fine here: it runs once per socket, at shutdown.
            while self._subscriber.queue.size and self._loop.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        self._subscriber.queue.close()
        with contextlib.suppress(Exception):
            await self._socket.close(code=code, reason=reason)

    # the socket's life ------------------------------------------------------------------
    async def run(self) -> None:
        await self._socket.accept()
        registry = self._services.sessions
        registry.track(self)
        writer = asyncio.create_task(self._write_loop(), name="ws-writer")
        try:
            header = self._socket.headers.get("authorization")
            if header is not None:
                try:
                    token = parse_bearer(header)
                except Unauthorized:
                    token = ""
                if not token or not await self._authenticate(token):
                    await self.close(CloseCode.UNAUTHENTICATED, "invalid token")
                    return
            await self._read_loop()
        finally:
            self._closed = True
            registry.remove(self)
            await self._services.hub.detach(self._subscriber)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def _write_loop(self) -> None:
        try:
            while True:
                frame = await self._subscriber.get()
                await self._socket.send_data(frame.decode(), mode="text")
        except QueueOverflowed:
            self._closed_by_overflow()
        except (QueueClosed, WebSocketDisconnect, OSError):
            pass

    def _closed_by_overflow(self) -> None:
        # Runs in the writer task; close() awaits the socket, so hand it to a task of its own.
        self._loop.create_task(self.close(CloseCode.SLOW_CONSUMER, "slow consumer"))

    def _deadline(self) -> float:
        if self._principal is None:
            return self._auth_deadline
        return self._loop.time() + (self._principal.expires_at_unix - _wall())

    async def _read_loop(self) -> None:
        while not self._closed:
            remaining = self._deadline() - self._loop.time()
            if remaining <= 0:
                reason = "authentication timeout" if self._principal is None else "token expired"
                await self.close(CloseCode.UNAUTHENTICATED, reason)
                return
            try:
                message = await asyncio.wait_for(self._socket.receive(), remaining)
            except TimeoutError:
                continue
            except WebSocketDisconnect:
                return
            if message["type"] == "websocket.disconnect":
                return
            if message["type"] != "websocket.receive":
                continue
            text = message.get("text")
            await self._on_frame(text if text is not None else message.get("bytes") or b"")

    # frames -----------------------------------------------------------------------------
    async def _on_frame(self, data: str | bytes) -> None:
        if not self._bucket.allow():
            self._strikes += 1
            if self._strikes > RATE_LIMIT_STRIKES:
                await self.close(CloseCode.RATE_LIMITED, "rate limited")
                return
            self._reply_error(
                _peek_id(data),
                ErrorCode.RATE_LIMITED,
                "slow down",
                retryable=True,
                details={"retry_after": round(self._bucket.retry_after(), 3)},
            )
            return
        self._strikes = 0
        try:
            request = ops.decode_request(data)
        except ops.FrameError as exc:
            self._reply_error(exc.request_id, exc.code, exc.message, details=exc.details)
            if exc.is_violation and self._invalid.record():
                await self.close(CloseCode.PROTOCOL_VIOLATION, "too many invalid frames")
            return
        try:
            result = await self._dispatch(request)
        except DomainError as exc:
            self._reply_error(
                request.id, exc.code, exc.message, retryable=exc.retryable, details=exc.details
            )
            return
        except Exception:
            log.exception("op %s failed", type(request).__name__)
            self._reply_error(
                request.id, ErrorCode.INTERNAL_ERROR, "internal error", retryable=True
            )
            return
        if result is not None:
            self._subscriber.send(encode_reply(request.id, result))

    async def _dispatch(self, request: ops.Request) -> Any:
        if isinstance(request, ops.Auth):
            if not await self._authenticate(request.token):
                raise Unauthorized("token is not valid", code="invalid_token")
            return {
                "user": await self._me(),
                "session_id": self.session_id,
                "heartbeat_s": HEARTBEAT_S,
            }
        if self._principal is None:
            raise Unauthorized("authenticate first", code="unauthenticated")
        if isinstance(request, ops.Ping):
            return {}
        if isinstance(request, ops.Subscribe):
            return await self._subscribe(request)
        if isinstance(request, ops.Unsubscribe):
            await self._unsubscribe(request.channel)
            return {}
        action = ACTIONS[type(request)]
        if type(request) not in READS:
            # The REST per-user write budget, shared (RateLimited → rate_limited).
            self._services.limits.writes.hit(str(self._principal.user_id))
        return await action(self._services, self._principal.user_id, request)

    async def _authenticate(self, token: str) -> bool:
        try:
            principal = await self._services.auth.authenticate(token)
        except Unauthorized:
            return False
        if self._principal is not None and principal.user_id != self._principal.user_id:
            return False  # a session belongs to one user for its whole life
        if self._principal is None and not self._services.sessions.add_user(
            self, principal.user_id
        ):
            await self.close(CloseCode.TOO_MANY_SOCKETS, "too many sockets for this user")
            return True  # closing; the reply will not be read
        self._principal = principal
        return True

    async def _me(self) -> Any:
        assert self._principal is not None
        account = await self._services.ctx.store.users.get(self._principal.user_id)
        if account is None:
            raise Unauthorized("account no longer exists", code="invalid_token")
        return MeView.of_me(account)

    async def _subscribe(self, request: ops.Subscribe) -> Any:
        assert self._principal is not None
        user_id = self._principal.user_id
        internal = await self._services.subscriptions.authorize(request.channel, user_id)
        subscriber = self._subscriber
        if internal not in subscriber.channels and (
            len(subscriber.channels) >= self._services.settings.ws_max_subscriptions
        ):
            raise DomainError(
                f"at most {self._services.settings.ws_max_subscriptions} subscriptions per socket",
                code="too_many_subscriptions",
            )
        try:
            result = await self._services.hub.subscribe(subscriber, internal, request.position)
        except SubscriberClosed:
            return None
        # Queued before any await: the reply precedes every live push of this channel.
        subscriber.send(encode_reply(request.id, result))
        return None

    async def _unsubscribe(self, name: str) -> None:
        assert self._principal is not None
        internal = channel_names.resolve(name, self._principal.user_id)
        await self._services.hub.unsubscribe(self._subscriber, internal)

    def _reply_error(
        self,
        request_id: int | None,
        code: str,
        message: str,
        *,
        retryable: bool = False,
        details: Any = None,
    ) -> None:
        self._subscriber.send(
            encode_error(request_id, code, message, retryable=retryable, details=details)
        )


def _wall() -> float:
    return time.time()


def _peek_id(data: str | bytes) -> int | None:
    try:
        request = ops.decode_request(data)
    except ops.FrameError as exc:
        return exc.request_id
    return request.id
