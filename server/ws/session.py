"""One WebSocket session as a state machine: frames and the time in; replies, pushes and
close decisions out.

`SessionCore` is sans-I/O, as python-websockets' protocol and the SDK's resume.py are: it
never touches the socket, never sleeps and never reads a clock. Every input carries `now`
(monotonic seconds from the driver's clock); the driver (endpoint.py) asks
`next_deadline()` how long it may wait for the next frame and reports the start and end
of every write, so each time-driven policy (auth deadline, token expiry, flood limits,
send stall) is a pure function of the inputs and is tested in milliseconds.

Replies go into the subscriber's send queue, the one the hub puts live pushes in, so a
subscribe reply precedes the pushes that follow it and a slow reader is closed with 4001
instead of growing the server. Domain calls (authenticate, actions, the hub) are awaited
here: they are the session's services, not its I/O. Requests are handled one at a time:
replies come back in order and one socket never holds more than one database connection.
"""

from __future__ import annotations

import enum
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from channels.hub import Subscriber, SubscriberClosed
from channels.queue import QueueClosed, QueueLost, QueueOverflowed
from domain import channel_names
from domain.errors import DomainError, Unauthorized
from domain.services.auth import Principal
from domain.views import MeView
from server.container import Services
from server.ratelimit import TokenBucket
from server.settings import Settings
from server.ws import ops
from server.ws.actions import ACTIONS, BUCKETS, READS
from server.ws.frames import CloseCode, ErrorCode, encode_error, encode_reply

__all__ = [
    "INBOUND_BURST",
    "INBOUND_RATE",
    "Close",
    "InvalidFrameCounter",
    "SessionCore",
    "Timeouts",
]

log = logging.getLogger("plaza.ws")

# A client that sends this many frames in a row after being told `rate_limited` (with no
# accepted frame in between) is not backing off: close with 4008.
RATE_LIMIT_STRIKES = 50
# 20 frames/s (PLAZA_RATE_WS_FRAMES_PER_SECOND) is far above what a person tapping a
# screen sends, yet a client flooding the socket is cut off within seconds; a burst of 2.5
# times that (50) lets a reconnecting client resubscribe to its channels and re-send
# queued actions at once.
INBOUND_RATE = 20.0
INBOUND_BURST_RATIO = 2.5
INBOUND_BURST = INBOUND_RATE * INBOUND_BURST_RATIO
# A well-behaved client sends no invalid frame; a few come from bugs, so the socket stays
# open for them. More than 10 in a minute is a broken or hostile client: close with 4500.
INVALID_FRAMES_LIMIT = 10
INVALID_FRAMES_WINDOW_S = 60.0
# Before a planned close, close_soon gets this long to leave the queue: a small push
# reaches a live client in one round trip, even on a slow mobile link.
FLUSH_S = 1.0
# A socket told to close gets as long to take its close frame as it gets to answer a
# ping, but at most 5 s: a shutdown waits FLUSH_S + this for all sockets at once, well
# inside the 10-30 s stop grace of process managers (systemd, Kubernetes, Heroku).
CLOSE_TIMEOUT_S = 5.0
# The code of a session dropped without a close frame: never sent, it is what the peer
# observes (RFC 6455 §7.1.5), and it names such an end in logs and tests.
ABNORMAL = 1006


@dataclass(frozen=True, slots=True)
class Close:
    """A decision to end the session."""

    code: int
    reason: str
    # Push close_soon first and give the queue FLUSH_S to carry it out (planned closes).
    warn: bool = False
    # Send no close frame: the peer is gone, or is not taking what we send.
    abort: bool = False


@dataclass(frozen=True, slots=True)
class Timeouts:
    """The session's time limits, in seconds; `of(settings)` gives the configured ones."""

    # Without a valid token for this long after opening: close 4401.
    auth: float
    # A write to the transport that has not completed in this long means a dead peer.
    stall: float
    # How long the driver waits for a close frame to be taken before abandoning the socket.
    close: float
    # How long a planned close waits for close_soon to leave the queue.
    flush: float = FLUSH_S

    @classmethod
    def of(cls, settings: Settings) -> Timeouts:
        # uvicorn's heartbeat window: a peer that takes no frame for ping_interval +
        # ping_timeout would have failed to answer a ping in that time too.
        stall = settings.ws_ping_interval + settings.ws_ping_timeout
        close = min(CLOSE_TIMEOUT_S, settings.ws_ping_timeout)
        return cls(auth=settings.ws_auth_timeout, stall=stall, close=close)


class InvalidFrameCounter:
    """Counts invalid frames in a sliding window; more than `limit` is a violation."""

    __slots__ = ("_clock", "_limit", "_stamps", "_window")

    def __init__(
        self,
        limit: int = INVALID_FRAMES_LIMIT,
        window: float = INVALID_FRAMES_WINDOW_S,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        # Never more than limit + 1 stamps: memory per socket stays constant. Made with
        # the first invalid frame: most sockets never send one, and a deque is ~0.7 KB.
        self._stamps: deque[float] | None = None

    def record(self) -> bool:
        """Count one invalid frame now; True when that makes more than `limit` in the window."""
        now = self._clock()
        if self._stamps is None:
            self._stamps = deque(maxlen=self._limit + 1)
        stamps = self._stamps
        stamps.append(now)
        while stamps and stamps[0] <= now - self._window:
            stamps.popleft()
        return len(stamps) > self._limit


class _Admission(enum.Enum):
    ADMITTED = "admitted"
    REFUSED = "refused"  # a bad token, or another user's
    FULL = "full"  # the user has the most sockets already: closing with 4029


class SessionCore:
    """The session's rules; `closing` is the decision to end it, once one is made.

    Inputs: `open` (the upgrade's bearer token), `on_frame`, `on_timer`, `write_started` /
    `write_ended`, `on_queue_closed`, `on_write_failed`, `on_disconnect`, `close` (logout,
    shutdown). Each that can end the session returns `closing`; the first decision stands
    and later input is ignored.
    """

    def __init__(
        self,
        services: Services,
        subscriber: Subscriber,
        *,
        now: float,
        wall: Callable[[], float],
        admit: Callable[[int], Awaitable[bool]],
        timeouts: Timeouts | None = None,
    ) -> None:
        """`wall` is read only to place a token's `exp` (wall time) on the monotonic
        timeline when it is presented; `admit(user_id)` is False when that user has the
        most sockets already (the registry's per-user limit)."""
        self._services = services
        self._subscriber = subscriber
        self._wall = wall
        self._admit = admit
        self._timeouts = timeouts or Timeouts.of(services.settings)
        self._now = now
        self._principal: Principal | None = None
        # Until the auth deadline without a token; then until the token expires.
        self._valid_until = now + self._timeouts.auth
        self._writing_since: float | None = None
        self._closing: Close | None = None
        rate = services.settings.rate_ws_frames_per_second
        self._bucket = TokenBucket(rate, rate * INBOUND_BURST_RATIO, clock=self._clock)
        self._strikes = 0
        self._invalid = InvalidFrameCounter(clock=self._clock)

    def _clock(self) -> float:
        # The limiters read the time of the input being handled.
        return self._now

    @property
    def user_id(self) -> int | None:
        return None if self._principal is None else self._principal.user_id

    @property
    def session_id(self) -> str | None:
        return None if self._principal is None else self._principal.session_id

    @property
    def closing(self) -> Close | None:
        return self._closing

    # time --------------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        """When `on_timer` must run next, if nothing else happens first."""
        if self._closing is not None:
            return None
        deadline = self._valid_until
        if self._writing_since is not None:
            deadline = min(deadline, self._writing_since + self._timeouts.stall)
        return deadline

    def on_timer(self, now: float) -> Close | None:
        if self._closing is None:
            self._now = now
            since = self._writing_since
            if since is not None and now >= since + self._timeouts.stall:
                self._decide(Close(ABNORMAL, "send stalled", abort=True))
            elif now >= self._valid_until:
                expired = "authentication timeout" if self._principal is None else "token expired"
                self._decide(Close(CloseCode.UNAUTHENTICATED, expired))
        return self._closing

    def write_started(self, now: float) -> None:
        """The driver hands a frame to the transport (one write at a time)."""
        self._writing_since = now

    def write_ended(self) -> None:
        """The transport took the frame (or the write failed)."""
        self._writing_since = None

    # the socket's life ---------------------------------------------------------------------
    async def open(self, token: str | None, now: float) -> Close | None:
        """The upgrade's bearer token (None: no Authorization header, "" an unusable one).
        A bad one closes with 4401 at once; the `auth` frame is how to retry on one socket."""
        if token is not None:
            self._now = now
            admission = await self._authenticate(token) if token else _Admission.REFUSED
            if admission is _Admission.REFUSED:
                self._decide(Close(CloseCode.UNAUTHENTICATED, "invalid token"))
        return self._closing

    def on_queue_closed(self, end: QueueClosed) -> Close | None:
        """The writer found the send queue closed: by us (a close is under way), by the hub
        (events lost for good: 4000, resume) or by overflow (slow consumer: 4001)."""
        if isinstance(end, QueueOverflowed):
            self._decide(Close(CloseCode.SLOW_CONSUMER, "slow consumer"))
        elif isinstance(end, QueueLost):
            self._decide(Close(CloseCode.GOING_AWAY, "live events lost; resume"))
        return self._closing

    def on_write_failed(self) -> Close:
        """The transport refused a frame: the socket is unusable."""
        return self._decide(Close(ABNORMAL, "send failed", abort=True))

    def on_disconnect(self, code: int) -> Close:
        """The peer closed (or the server did, and told us so): nothing more to send."""
        return self._decide(Close(code, "peer closed", abort=True))

    def close(self, code: int, reason: str, *, warn: bool = False) -> Close:
        """End the session from outside: logout (4401), shutdown (4000, warned)."""
        return self._decide(Close(code, reason, warn=warn))

    def _decide(self, close: Close) -> Close:
        if self._closing is None:
            self._closing = close
        return self._closing

    # frames --------------------------------------------------------------------------------
    async def on_frame(self, data: str | bytes, now: float) -> Close | None:
        """One frame from the client; its reply (if any) is queued before this returns."""
        if self.on_timer(now) is not None:  # a deadline that passed comes first
            return self._closing
        if not self._bucket.allow():
            self._strikes += 1
            if self._strikes > RATE_LIMIT_STRIKES:
                return self._decide(Close(CloseCode.RATE_LIMITED, "rate limited"))
            retry_after = round(self._bucket.retry_after(), 3)
            self._error(
                _peek_id(data),
                ErrorCode.RATE_LIMITED,
                "slow down",
                retryable=True,
                details={"retry_after": retry_after},
            )
            return self._closing
        self._strikes = 0
        try:
            request = ops.decode_request(data)
        except ops.FrameError as exc:
            self._error(exc.request_id, exc.code, exc.message, details=exc.details)
            if exc.is_violation and self._invalid.record():
                self._decide(Close(CloseCode.PROTOCOL_VIOLATION, "too many invalid frames"))
            return self._closing
        try:
            result = await self._dispatch(request)
        except DomainError as exc:
            self._error(
                request.id, exc.code, exc.message, retryable=exc.retryable, details=exc.details
            )
        except Exception:
            log.exception("op %s failed", type(request).__name__)
            self._error(request.id, ErrorCode.INTERNAL_ERROR, "internal error", retryable=True)
        else:
            if result is not None:
                self._send(encode_reply(request.id, result))
        return self._closing

    async def _dispatch(self, request: ops.Request) -> Any:
        """The op's result, or None when its reply is queued already or not due."""
        if isinstance(request, ops.Auth):
            admission = await self._authenticate(request.token)
            if admission is _Admission.REFUSED:
                raise Unauthorized("token is not valid", code="invalid_token")
            if admission is _Admission.FULL:
                return None  # closing with 4029: the close code is the answer
            return {
                "user": await self._me(),
                "session_id": self.session_id,
                "heartbeat_s": self._services.settings.ws_ping_interval,
            }
        principal = self._principal
        if principal is None:
            raise Unauthorized("authenticate first", code="unauthenticated")
        if isinstance(request, ops.Ping):
            return {}
        if isinstance(request, ops.Subscribe):
            await self._subscribe(principal.user_id, request)
            return None
        if isinstance(request, ops.Unsubscribe):
            internal = channel_names.resolve(request.channel, principal.user_id)
            await self._services.hub.unsubscribe(self._subscriber, internal)
            return {}
        if type(request) not in READS:
            # The REST per-user budgets, shared (RateLimited → rate_limited).
            limits, user = self._services.limits, str(principal.user_id)
            await limits.writes.hit(user)
            bucket = BUCKETS.get(type(request))
            if bucket is not None:
                await getattr(limits, bucket).hit(user)
        return await ACTIONS[type(request)](self._services, principal.user_id, request)

    async def _authenticate(self, token: str) -> _Admission:
        try:
            principal = await self._services.auth.authenticate(token)
        except Unauthorized:
            return _Admission.REFUSED
        current = self._principal
        if current is not None and principal.user_id != current.user_id:
            return _Admission.REFUSED  # a session belongs to one user for its whole life
        if current is None and not await self._admit(principal.user_id):
            self._decide(Close(CloseCode.TOO_MANY_SOCKETS, "too many sockets for this user"))
            return _Admission.FULL
        self._principal = principal
        # A JWT's exp is wall time; from here on the deadline lives on the monotonic clock.
        self._valid_until = self._now + (principal.expires_at_unix - self._wall())
        return _Admission.ADMITTED

    async def _me(self) -> MeView:
        assert self._principal is not None
        account = await self._services.ctx.store.users.get(self._principal.user_id)
        if account is None:
            raise Unauthorized("account no longer exists", code="invalid_token")
        return MeView.of_me(account)

    async def _subscribe(self, user_id: int, request: ops.Subscribe) -> None:
        internal = await self._services.subscriptions.authorize(request.channel, user_id)
        subscriber = self._subscriber
        limit = self._services.settings.ws_max_subscriptions
        if internal not in subscriber.channels and len(subscriber.channels) >= limit:
            raise DomainError(
                f"at most {limit} subscriptions per socket", code="too_many_subscriptions"
            )
        try:
            result = await self._services.hub.subscribe(subscriber, internal, request.position)
        except SubscriberClosed:
            return  # the socket is closing: nobody reads the reply
        # Queued before any await: the reply precedes every live push of this channel.
        self._send(encode_reply(request.id, result))

    def _send(self, frame: bytes) -> None:
        if not self._subscriber.send(frame) and self._subscriber.overflowed:
            self._decide(Close(CloseCode.SLOW_CONSUMER, "slow consumer"))

    def _error(
        self,
        request_id: int | None,
        code: str,
        message: str,
        *,
        retryable: bool = False,
        details: Any = None,
    ) -> None:
        self._send(encode_error(request_id, code, message, retryable=retryable, details=details))


def _peek_id(data: str | bytes) -> int | None:
    try:
        request = ops.decode_request(data)
    except ops.FrameError as exc:
        return exc.request_id
    return request.id
