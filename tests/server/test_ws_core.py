"""The session core on a fake clock, with the real domain services of one in-process app
(SQLite) for the module: every time-driven policy of the socket, each in milliseconds."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
import pytest_asyncio
from api_world import Api, User, make_settings, running_api
from frame_strategies import FRAMES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.hub import Subscriber
from channels.queue import QueueClosed, QueueLost, QueueOverflowed
from server.security.tokens import JwtAccessTokens
from server.ws.frames import CloseCode
from server.ws.session import Close, SessionCore

# One app for the module: its start and stop cost more than all the tests together.
pytestmark = pytest.mark.asyncio(loop_scope="module")


class FakeClock:
    """Monotonic `now` that moves only when told to, and a wall clock moving with it."""

    def __init__(self) -> None:
        self.now = 0.0
        self._wall0 = time.time()

    def wall(self) -> float:
        return self._wall0 + self.now


class Handle:
    """What the registry tracks for a socket; the core only needs it to be admitted."""

    user_id: int | None = None
    session_id: str | None = None

    async def close(self, code: int, reason: str, *, warn: bool = False) -> None:
        raise AssertionError("not closed through the registry in these tests")


class Session:
    """A core, its clock and its send queue, seen as the client would see them."""

    def __init__(self, api: Api, *, queue_bytes: int | None = None, **settings: Any) -> None:
        """`settings`: WebSocket settings that differ from the app's, for this socket."""
        services = api.services
        if settings:
            changed = dataclasses.replace(services.settings, **settings)
            services = dataclasses.replace(services, settings=changed)
        self.clock = FakeClock()
        self.subscriber = Subscriber(queue_bytes or services.settings.ws_send_queue_bytes)
        handle = Handle()
        self.core = SessionCore(
            services,
            self.subscriber,
            now=self.clock.now,
            wall=self.clock.wall,
            admit=lambda user_id: api.services.sessions.add_user(handle, user_id),
        )
        self._ids = 0

    async def send(self, frame: dict[str, Any] | str) -> Close | None:
        data = frame if isinstance(frame, str) else json.dumps(frame)
        return await self.core.on_frame(data, self.clock.now)

    async def call(self, op: str, **args: Any) -> dict[str, Any]:
        """Send a request and return its one reply (nothing else may be queued)."""
        self._ids += 1
        assert await self.send({"id": self._ids, "op": op, **args}) is None
        (reply,) = await self.frames()
        assert reply["id"] == self._ids, reply
        return reply

    async def ok(self, op: str, **args: Any) -> Any:
        reply = await self.call(op, **args)
        assert reply["ok"] is True, reply
        return reply["result"]

    async def frames(self) -> list[dict[str, Any]]:
        """Everything queued for the socket so far."""
        out = []
        while len(self.subscriber.queue):
            out.append(json.loads(await self.subscriber.get()))
        return out

    def at(self, now: float) -> Close | None:
        self.clock.now = now
        return self.core.on_timer(now)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    tmp = tmp_path_factory.mktemp("ws-core")
    settings = make_settings(tmp, f"sqlite:///{tmp / 'plaza.db'}")
    # No event worker: the core's tests need no relayed events.
    async with running_api(settings, workers=False) as api:
        yield api


async def authed(api: Api, user: User, **kw: Any) -> Session:
    session = Session(api, **kw)
    assert await session.core.open(user.access_token, session.clock.now) is None
    return session


def exp_of(token: str) -> float:
    return float(jwt.decode(token, options={"verify_signature": False})["exp"])


async def token_with_ttl(api: Api, user: User, ttl: int) -> str:
    """An access token of `user`'s login that lives `ttl` seconds (from real time)."""
    settings = api.services.settings
    account = await api.services.ctx.store.users.get(int(user.id))
    assert account is not None
    tokens = JwtAccessTokens(settings.secret_key, settings.jwt_issuer, settings.jwt_audience, ttl)
    sid = jwt.decode(user.access_token, options={"verify_signature": False})["sid"]
    return tokens.issue(account.id, account.token_version, sid)


AUTH_TIMEOUT = Close(4401, "authentication timeout")


# --- authentication --------------------------------------------------------------------


async def test_unauthenticated_socket_closes_4401_at_the_auth_deadline(api: Api) -> None:
    s = Session(api)
    assert await s.core.open(None, 0.0) is None
    assert s.core.next_deadline() == 10.0
    assert s.at(9.999) is None
    assert s.at(10.0) == AUTH_TIMEOUT
    # Decided: the deadline is gone and later frames are not served.
    assert s.core.next_deadline() is None
    assert await s.send({"id": 1, "op": "ping"}) == AUTH_TIMEOUT
    assert await s.frames() == []


async def test_the_auth_deadline_is_a_setting(api: Api) -> None:
    s = Session(api, ws_auth_timeout=3)
    assert s.core.next_deadline() == 3.0
    assert s.at(3.0) == AUTH_TIMEOUT


async def test_before_auth_ops_are_refused_and_bad_tokens_may_be_retried(api: Api) -> None:
    ada = await api.user()
    s = Session(api)
    assert (await s.call("ping"))["error"]["code"] == "unauthenticated"
    assert (await s.call("subscribe", channel="feed"))["error"]["code"] == "unauthenticated"
    s.clock.now = 5.0
    assert (await s.call("auth", token="not-a-token"))["error"]["code"] == "invalid_token"
    assert s.core.next_deadline() == 10.0  # a refused token changes nothing
    s.clock.now = 9.9
    result = await s.ok("auth", token=ada.access_token)
    assert result["user"]["id"] == ada.id and result["user"]["email"] == ada.email
    assert result["heartbeat_s"] == 20 and result["session_id"] == s.core.session_id
    assert s.core.user_id == int(ada.id)
    # The deadline is now the token's expiry, 15 minutes away.
    assert s.core.next_deadline() == pytest.approx(9.9 + exp_of(ada.access_token) - s.clock.wall())
    assert s.at(10.5) is None
    assert await s.ok("ping") == {}


async def test_an_auth_frame_arriving_after_the_deadline_is_not_served(api: Api) -> None:
    ada = await api.user()
    s = Session(api)
    s.clock.now = 10.0
    assert await s.send({"id": 1, "op": "auth", "token": ada.access_token}) == AUTH_TIMEOUT
    assert await s.frames() == []
    assert s.core.user_id is None


async def test_the_upgrade_header_token(api: Api) -> None:
    ada = await api.user()
    for bad in ("garbage", ""):  # "" is a header that is not `Bearer <token>`
        assert await Session(api).core.open(bad, 0.0) == Close(4401, "invalid token")
    s = await authed(api, ada)
    assert s.core.user_id == int(ada.id)
    assert await s.ok("ping") == {}


async def test_token_expiry_closes_4401_and_a_fresh_token_extends_the_session(
    api: Api,
) -> None:
    ada = await api.user()
    first = await token_with_ttl(api, ada, 900)
    fresh = await token_with_ttl(api, ada, 1800)
    s = Session(api)
    await s.ok("auth", token=first)
    expiry = exp_of(first) - s.clock.wall()
    assert s.core.next_deadline() == pytest.approx(expiry)
    s.clock.now = 600.0  # well before expiry: refresh and re-auth
    await s.ok("auth", token=fresh)
    new_expiry = exp_of(fresh) - (s.clock.wall() - s.clock.now)
    assert s.core.next_deadline() == pytest.approx(new_expiry)
    assert new_expiry > expiry + 800
    # The first token's expiry passes: the session lives on with the fresh one...
    assert s.at(expiry + 1) is None
    assert await s.ok("ping") == {}
    # ...until that one expires too.
    assert s.at(new_expiry - 0.001) is None
    assert s.at(new_expiry) == Close(4401, "token expired")


async def test_reauth_as_another_user_is_refused_and_the_deadline_stays(api: Api) -> None:
    ada, bob = await api.user(), await api.user()
    s = await authed(api, ada)
    deadline = s.core.next_deadline()
    reply = await s.call("auth", token=bob.access_token)
    assert reply["ok"] is False and reply["error"]["code"] == "invalid_token"
    assert s.core.user_id == int(ada.id) and s.core.next_deadline() == deadline


async def test_the_eleventh_socket_closes_4029_with_no_reply_and_no_traceback(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ada = await api.user()
    for _ in range(10):  # PLAZA_WS_MAX_SOCKETS_PER_USER
        await authed(api, ada)
    by_frame = Session(api)
    full = Close(4029, "too many sockets for this user")
    assert await by_frame.send({"id": 1, "op": "auth", "token": ada.access_token}) == full
    assert await by_frame.frames() == []  # the close code is the answer
    assert await Session(api).core.open(ada.access_token, 0.0) == full  # by header
    assert api.services.sessions.count(int(ada.id)) == 10
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


# --- flood limits ----------------------------------------------------------------------


async def test_a_flood_gets_rate_limited_replies_then_4008(api: Api) -> None:
    s = await authed(api, await api.user())
    for n in range(1, 51):  # the burst
        assert await s.send({"id": n, "op": "ping"}) is None
    assert all(r["ok"] for r in await s.frames())
    for n in range(51, 101):  # 50 refused in a row: still answered
        assert await s.send({"id": n, "op": "ping"}) is None
    refused = await s.frames()
    assert [r["id"] for r in refused] == list(range(51, 101))
    assert {r["error"]["code"] for r in refused} == {"rate_limited"}
    assert refused[0]["error"]["retryable"] is True
    assert refused[0]["error"]["details"] == {"retry_after": 0.05}  # one token at 20/s
    # The 51st refused frame in a row: the client is not backing off.
    assert await s.send({"id": 101, "op": "ping"}) == Close(4008, "rate limited")
    assert await s.frames() == []


async def test_an_accepted_frame_resets_the_strikes(api: Api) -> None:
    s = await authed(api, await api.user())
    for n in range(100):
        assert await s.send({"id": n, "op": "ping"}) is None
    s.clock.now = 0.05  # one token back: the next frame is served
    assert await s.send({"id": 100, "op": "ping"}) is None
    s.clock.now = 0.06
    for n in range(101, 151):
        assert await s.send({"id": n, "op": "ping"}) is None
    frames = await s.frames()
    assert frames[100] == {"id": 100, "ok": True, "result": {}}
    assert len(frames) == 151
    assert await s.send({"id": 151, "op": "ping"}) == Close(4008, "rate limited")


async def test_rate_limited_frames_are_answered_with_their_own_id(api: Api) -> None:
    s = await authed(api, await api.user())
    for n in range(50):
        await s.send({"id": n, "op": "ping"})
    await s.frames()
    s.clock.now = 0.01
    for frame in ('{"id": 77, "op": "post.like"}', "not json", '{"id": 78, "op": "fly"}'):
        assert await s.send(frame) is None
    assert [(r["id"], r["error"]["details"]["retry_after"]) for r in await s.frames()] == [
        (77, 0.04),
        (None, 0.04),
        (78, 0.04),
    ]


async def test_more_than_ten_invalid_frames_in_a_minute_close_4500(api: Api) -> None:
    s = await authed(api, await api.user())
    for n in range(10):
        s.clock.now = n * 0.1
        assert await s.send("nope") is None
    replies = await s.frames()
    assert [(r["id"], r["error"]["code"]) for r in replies] == [(None, "invalid_frame")] * 10
    s.clock.now = 59.9  # the first is still within the minute
    assert await s.send({"id": 1, "op": "fly"}) == Close(4500, "too many invalid frames")
    assert (await s.frames())[0]["error"]["code"] == "unknown_op"


async def test_invalid_frames_leave_the_window_and_bad_arguments_do_not_count(
    api: Api,
) -> None:
    s = await authed(api, await api.user())
    for _ in range(10):
        await s.send("[1, 2]")
    s.clock.now = 60.0  # the ten are exactly a minute old: out
    assert await s.send("[1, 2]") is None
    for n in range(40):  # wrong arguments are a validation_error, not a violation
        s.clock.now = 61 + n
        assert await s.send({"id": n, "op": "post.like", "post_id": 5}) is None
    codes = {r["error"]["code"] for r in (await s.frames())[11:]}
    assert codes == {"validation_error"}


async def test_frames_nested_too_deeply_are_ordinary_invalid_frames(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    deep = "[" * 30_000 + "]" * 30_000
    frames = [
        "[" * 60_000,
        '{"id": 1, "op": "subscribe", "channel": "feed", "since": ' + deep + "}",
        '{"id": 2, "op": "ping", "extra": ' + deep + "}",
    ]
    s = await authed(api, await api.user())
    for frame in frames:
        assert await s.send(frame) is None  # the socket stays open
    replies = await s.frames()
    assert [r["error"]["code"] for r in replies] == ["invalid_frame"] * 3
    assert await s.ok("ping") == {}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


# --- sending -----------------------------------------------------------------------------


async def test_a_write_not_completed_in_the_heartbeat_window_aborts(api: Api) -> None:
    s = await authed(api, await api.user())
    expiry = s.core.next_deadline()
    s.core.write_started(100.0)
    s.core.write_ended()  # written at once: no deadline left behind
    assert s.core.next_deadline() == expiry
    s.core.write_started(200.0)
    assert s.core.next_deadline() == 240.0  # ping interval + ping timeout
    assert s.at(239.999) is None
    assert s.at(240.0) == Close(1006, "send stalled", abort=True)


async def test_a_reply_that_overflows_the_send_queue_closes_4001(api: Api) -> None:
    s = await authed(api, await api.user(), queue_bytes=1024)
    decisions = [await s.send({"id": n, "op": "ping"}) for n in range(50)]
    slow = Close(4001, "slow consumer")
    assert decisions[-1] == slow
    assert 25 < decisions.index(slow) < 40  # ~30-byte replies: some 34 fit in 1 KiB
    assert s.subscriber.overflowed


async def test_the_writer_reports_how_the_queue_ended(api: Api) -> None:
    ada = await api.user()
    cases: list[tuple[QueueClosed, Close | None]] = [
        (QueueClosed(), None),  # closed by the session itself
        (QueueOverflowed(), Close(4001, "slow consumer")),
        (QueueLost(), Close(4000, "live events lost; resume")),
    ]
    for end, decision in cases:
        s = await authed(api, ada)
        assert s.core.on_queue_closed(end) == decision
    s = await authed(api, ada)
    assert s.core.on_write_failed() == Close(1006, "send failed", abort=True)


async def test_the_subscription_limit(api: Api) -> None:
    s = await authed(api, await api.user(), ws_max_subscriptions=2)
    assert (await s.ok("subscribe", channel="feed"))["channel"] == "feed"
    await s.ok("subscribe", channel="notifications")
    over = await s.call("subscribe", channel="public")
    assert over["error"]["code"] == "too_many_subscriptions"
    assert over["error"]["message"] == "at most 2 subscriptions per socket"
    await s.ok("subscribe", channel="feed")  # already held: not a new one
    assert await s.ok("unsubscribe", channel="feed") == {}
    assert (await s.ok("subscribe", channel="public"))["channel"] == "public"


async def test_a_close_from_outside_stands_and_later_input_is_ignored(api: Api) -> None:
    s = await authed(api, await api.user())
    going = Close(4000, "server going away", warn=True)
    assert s.core.close(4000, "server going away", warn=True) == going
    assert s.core.close(4401, "logged out") == going  # the first decision stands
    assert await s.send({"id": 1, "op": "ping"}) == going
    assert s.at(1e9) == going
    assert s.core.on_disconnect(1000) == going
    assert await s.frames() == []


# --- fuzzing -----------------------------------------------------------------------------

# Closes a hostile stream of frames may earn; never 1011 or another internal failure.
ALLOWED_CLOSES = {CloseCode.PROTOCOL_VIOLATION, CloseCode.RATE_LIMITED, CloseCode.TOO_LARGE}


@given(batch=st.lists(FRAMES, min_size=1, max_size=6))
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
async def test_no_frame_crashes_a_session(api: Api, batch: list[str]) -> None:
    """Random frames into an authenticated session: every one is answered or closes the
    socket with a documented code; none raises, none is an internal error, and a session
    still open afterwards serves a ping."""
    s = await authed(api, await fuzz_user(api))
    for frame in batch:
        decision = await s.send(frame)
        replies = await s.frames()
        assert all(r.get("error", {}).get("code") != "internal_error" for r in replies), (
            frame,
            replies,
        )
        if decision is not None:
            assert decision.code in ALLOWED_CLOSES, (frame, decision)
            return
    assert await s.ok("ping") == {}


_fuzz_users: list[User] = []
_fuzz_sessions = 0


async def fuzz_user(api: Api) -> User:
    """A user for the next example: one per nine sessions (the tenth socket of a user
    would be refused, and a login per example would cost an argon2 hash each)."""
    global _fuzz_sessions
    if _fuzz_sessions % 9 == 0:
        _fuzz_users.append(await api.user())
    _fuzz_sessions += 1
    return _fuzz_users[-1]
