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
from dataclasses import dataclass
from typing import Any

from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect

from channels import protocol as p
from channels.hub import Hub, Subscriber, SubscriberClosed
from channels.names import UnknownChannel, resolve
from channels.names import parse_id as parse_channel_id
from channels.queue import QueueClosed, QueueOverflowed
from channels.ratelimit import InvalidFrameCounter, TokenBucket
from domain.errors import DomainError, Forbidden, NotFound, Unauthorized
from domain.ids import parse_id
from domain.services.auth import AuthService, Principal
from domain.services.base import Context, visible_post, visible_user
from domain.views import MeView
from server.ws.actions import ACTIONS, READS, ActionServices
from server.ws.registry import SessionRegistry

log = logging.getLogger("plaza.ws")

# Heartbeat hint for clients: uvicorn pings every 20 s and drops a peer that has not
# answered 20 s later, so a dead peer is gone within ~40 s (the protocol promises ~45 s).
HEARTBEAT_S = 20
# A client that sends this many frames in a row after being told `rate_limited` (with no
# accepted frame in between) is not backing off: close with 4008.
RATE_LIMIT_STRIKES = 50
# Before closing for a planned reason, give the writer this long to flush close_soon.
FLUSH_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class LiveContext:
    """Everything a session needs, built once by the app factory."""

    ctx: Context
    auth: AuthService
    actions: ActionServices
    hub: Hub
    registry: SessionRegistry
    max_subscriptions: int
    send_queue_bytes: int


class Session:
    def __init__(self, socket: WebSocket[Any, Any, Any], live: LiveContext) -> None:
        self._socket = socket
        self._live = live
        self._subscriber = Subscriber(max_bytes=live.send_queue_bytes)
        self._principal: Principal | None = None
        self._closed = False
        self._bucket = TokenBucket()
        self._strikes = 0
        self._invalid = InvalidFrameCounter()
        self._loop = asyncio.get_running_loop()
        self._auth_deadline = self._loop.time() + p.AUTH_TIMEOUT_S

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
        if warn and self._subscriber.send(p.encode_close_soon(p.CloseCode(code), reason)):
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
        registry = self._live.registry
        registry.track(self)
        writer = asyncio.create_task(self._write_loop(), name="ws-writer")
        try:
            header = self._socket.headers.get("authorization", "")
            if header:
                scheme, _, token = header.partition(" ")
                if scheme.lower() != "bearer" or not await self._authenticate(token.strip()):
                    await self.close(p.CloseCode.UNAUTHENTICATED, "invalid token")
                    return
            await self._read_loop()
        finally:
            self._closed = True
            registry.remove(self)
            await self._live.hub.detach(self._subscriber)
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
        self._loop.create_task(self.close(p.CloseCode.SLOW_CONSUMER, "slow consumer"))

    def _deadline(self) -> float:
        if self._principal is None:
            return self._auth_deadline
        return self._loop.time() + (self._principal.expires_at_unix - _wall())

    async def _read_loop(self) -> None:
        while not self._closed:
            remaining = self._deadline() - self._loop.time()
            if remaining <= 0:
                reason = "authentication timeout" if self._principal is None else "token expired"
                await self.close(p.CloseCode.UNAUTHENTICATED, reason)
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
                await self.close(p.CloseCode.RATE_LIMITED, "rate limited")
                return
            self._reply_error(
                _peek_id(data),
                p.ErrorCode.RATE_LIMITED,
                "slow down",
                retryable=True,
                details={"retry_after": round(self._bucket.retry_after(), 3)},
            )
            return
        self._strikes = 0
        try:
            request = p.decode_request(data)
        except p.FrameError as exc:
            self._reply_error(exc.request_id, exc.code, exc.message)
            if exc.is_violation and self._invalid.record():
                await self.close(p.CloseCode.PROTOCOL_VIOLATION, "too many invalid frames")
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
                request.id, p.ErrorCode.INTERNAL_ERROR, "internal error", retryable=True
            )
            return
        if result is not None:
            self._subscriber.send(p.encode_reply(request.id, result))

    async def _dispatch(self, request: p.Request) -> Any:
        if isinstance(request, p.Auth):
            if not await self._authenticate(request.token):
                raise Unauthorized("token is not valid", code="invalid_token")
            return {
                "user": await self._me(),
                "session_id": self.session_id,
                "heartbeat_s": HEARTBEAT_S,
            }
        if self._principal is None:
            raise Unauthorized("authenticate first", code="unauthenticated")
        if isinstance(request, p.Ping):
            return {}
        if isinstance(request, p.Subscribe):
            return await self._subscribe(request)
        if isinstance(request, p.Unsubscribe):
            await self._unsubscribe(request.channel)
            return {}
        action = ACTIONS[type(request)]
        actions = self._live.actions
        if actions.writes is not None and type(request) not in READS:
            actions.writes.hit(str(self._principal.user_id))  # RateLimited → rate_limited
        return await action(actions, self._principal.user_id, request)

    async def _authenticate(self, token: str) -> bool:
        try:
            principal = await self._live.auth.authenticate(token)
        except Unauthorized:
            return False
        if self._principal is not None and principal.user_id != self._principal.user_id:
            return False  # a session belongs to one user for its whole life
        if self._principal is None and not self._live.registry.add_user(self, principal.user_id):
            await self.close(p.CloseCode.TOO_MANY_SOCKETS, "too many sockets for this user")
            return True  # closing; the reply will not be read
        self._principal = principal
        return True

    async def _me(self) -> Any:
        assert self._principal is not None
        account = await self._live.ctx.store.users.get(self._principal.user_id)
        if account is None:
            raise Unauthorized("account no longer exists", code="invalid_token")
        return MeView.of_me(account)

    async def _subscribe(self, request: p.Subscribe) -> Any:
        assert self._principal is not None
        internal = await self._authorize(request.channel, self._principal.user_id)
        subscriber = self._subscriber
        if internal not in subscriber.channels and (
            len(subscriber.channels) >= self._live.max_subscriptions
        ):
            raise DomainError(
                f"at most {self._live.max_subscriptions} subscriptions per socket",
                code="too_many_subscriptions",
            )
        try:
            result = await self._live.hub.subscribe(subscriber, internal, request.position)
        except SubscriberClosed:
            return None
        # Queued before any await: the reply precedes every live push of this channel.
        subscriber.send(p.encode_reply(request.id, result))
        return None

    async def _unsubscribe(self, name: str) -> None:
        assert self._principal is not None
        try:
            internal = resolve(name, self._principal.user_id)
        except UnknownChannel:
            raise NotFound("unknown channel") from None
        await self._live.hub.unsubscribe(self._subscriber, internal)

    async def _authorize(self, name: str, user_id: int) -> str:
        kind, sep, rest = name.partition(":")
        if sep and kind in ("feed", "notifications"):
            # Naming another user's private channel: it exists, and it is not yours.
            owner = parse_channel_id(rest)
            if owner is None:
                raise NotFound("unknown channel")
            if owner != user_id:
                raise Forbidden(f"{kind} of another user")
            name = kind
        try:
            internal = resolve(name, user_id)
        except UnknownChannel:
            raise NotFound("unknown channel") from None
        if kind == "post" and sep:
            await visible_post(self._live.ctx, parse_id(rest), user_id)
        elif kind == "user" and sep:
            await visible_user(self._live.ctx, parse_id(rest), user_id)
        return internal

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
            p.encode_error(request_id, code, message, retryable=retryable, details=details)  # type: ignore[arg-type]
        )


def _wall() -> float:
    return time.time()


def _peek_id(data: str | bytes) -> int | None:
    try:
        request = p.decode_request(data)
    except p.FrameError as exc:
        return exc.request_id
    return request.id
