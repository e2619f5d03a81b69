"""The client SDK's live session against a real `plaza serve` on loopback.

Events of every kind arrive typed through `async with client.live() as live`; the session
survives a cut connection (a TCP proxy in the test aborts it) and resumes exactly; after
a restart that lost the channels' history it yields `resync` with a fresh REST page and
delivers nothing twice; it keeps a socket authenticated past the access token's expiry;
and it ends for good, without retrying, on logout elsewhere (4401 + refused refresh) and
on a protocol violation (4500).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import jwt
import pytest

from plaza_client import (
    RESYNC,
    AuthError,
    CommentCreated,
    LiveEvent,
    NotFound,
    Notification,
    Page,
    PayloadTooLarge,
    PlazaError,
    Post,
    ProtocolError,
    Resync,
    SessionClosed,
    TokenPair,
    ValidationError,
)
from tests.e2e.conftest import TEST_ENV
from tests.support.live_server import LiveServer, running_server
from tests.support.proxy import TcpProxy
from tests.support.sdk import (
    PASSWORD,
    Accounts,
    fast_backoff,
    next_event,
    quiet,
    take,
    until,
)

pytestmark = pytest.mark.e2e

# A known key, so the tests can sign access tokens that expire within seconds (the
# server's own TTL cannot go below 30 s): the server verifies them like its own.
SECRET = "sdk-e2e-" + "k" * 40
SHORT_TTL = {**TEST_ENV, "PLAZA_SECRET_KEY": SECRET, "PLAZA_ACCESS_TOKEN_TTL": "30"}


@pytest.fixture
async def accounts(server: LiveServer) -> AsyncIterator[Accounts]:
    async with Accounts(server.base_url) as pool:
        yield pool


@pytest.fixture
async def proxy(server: LiveServer) -> AsyncIterator[TcpProxy]:
    async with TcpProxy("127.0.0.1", server.port) as forwarder:
        yield forwarder


def post_id_of(event: LiveEvent) -> str:
    if isinstance(event.data, Post):
        return event.data.id
    assert isinstance(event.data, dict), event
    return str(event.data["post_id"])


def about(*post_ids: str) -> Callable[[LiveEvent], bool]:
    """Events about these posts only (`public` carries every post of the shared server)."""

    def match(event: LiveEvent) -> bool:
        return event.type == RESYNC or post_id_of(event) in post_ids

    return match


def created_ids(events: list[LiveEvent], channel: str) -> list[str]:
    return [post_id_of(e) for e in events if e.channel == channel and e.type == "post.created"]


# -- every event kind --------------------------------------------------------------------


async def test_every_event_kind_arrives_typed(accounts: Accounts) -> None:
    author = await accounts.new("author")
    fan = await accounts.new("fan")
    async with author.client.live() as alive, fan.client.live() as flive:
        await alive.subscribe("notifications")
        for channel in ("feed", f"user:{author.id}", "public"):
            sub = await flive.subscribe(channel)
            assert sub.channel == channel and not sub.recovered and sub.position is not None

        # A follow over the socket: the author is notified, the profile channel told.
        rel = await flive.call("user.follow", user_id=author.id)
        assert rel["following"] is True
        note, unread = await take(alive, 2)
        assert (note.channel, note.type) == ("notifications", "notification.created")
        assert isinstance(note.data, Notification)
        assert (note.data.kind, note.data.actor.id, note.data.post_id) == ("follow", fan.id, None)
        assert (unread.type, unread.data) == ("notifications.unread", {"count": 1})
        (followed,) = await take(flive, 1)
        assert (followed.channel, followed.type) == (f"user:{author.id}", "user.followed")
        assert followed.data["user_id"] == author.id
        assert followed.data["follower"]["id"] == fan.id

        # post.created on feed, user:{id} and public, as a typed Post.
        post = await author.client.create_post("live!")
        created = await take(flive, 3, where=about(post.id))
        assert sorted(e.channel for e in created) == sorted(["feed", f"user:{author.id}", "public"])
        for event in created:
            assert event.type == "post.created" and isinstance(event.data, Post)
            assert (event.data.id, event.data.content, event.data.author.id) == (
                post.id,
                "live!",
                author.id,
            )
            assert not hasattr(event.data.author, "email") and event.offset and event.epoch
            assert not event.recovered

        # Likes and comments on post:{id}, made with live.call().
        channel = f"post:{post.id}"
        await flive.subscribe(channel)
        liked = await flive.call("post.like", post_id=post.id)
        assert (liked["id"], liked["like_count"], liked["liked_by_me"]) == (post.id, 1, True)
        (like,) = await take(flive, 1, where=about(post.id))
        assert (like.channel, like.type) == (channel, "post.liked")
        assert like.data == {"post_id": post.id, "user_id": fan.id, "like_count": 1}
        note, unread = await take(alive, 2)
        assert isinstance(note.data, Notification) and note.data.kind == "like"
        assert note.data.post_id == post.id and unread.data == {"count": 2}

        comment = await flive.call("comment.create", post_id=post.id, content="nice")
        (commented,) = await take(flive, 1, where=lambda e: e.channel == channel)
        assert commented.type == "comment.created" and isinstance(commented.data, CommentCreated)
        assert commented.data.comment.id == comment["id"]
        assert commented.data.comment.post_id == post.id
        assert commented.data.comment.author.id == fan.id
        assert commented.data.comment_count == 1
        note, unread = await take(alive, 2)
        assert isinstance(note.data, Notification) and note.data.kind == "comment"
        assert note.data.comment_id == comment["id"] and unread.data == {"count": 3}

        unliked = await flive.call("post.unlike", post_id=post.id)
        assert unliked["like_count"] == 0
        (unlike,) = await take(flive, 1, where=lambda e: e.channel == channel)
        assert unlike.type == "post.unliked" and unlike.data["like_count"] == 0

        # A mark-read on another device pushes the new count.
        assert await author.client.mark_read() == 0
        (unread,) = await take(alive, 1)
        assert (unread.type, unread.data) == ("notifications.unread", {"count": 0})

        # post.deleted follows post.created's routes.
        await author.client.delete_post(post.id)
        deleted = await take(flive, 3, where=about(post.id))
        assert {e.type for e in deleted} == {"post.deleted"}
        assert {e.channel for e in deleted} == {"feed", f"user:{author.id}", "public"}
        assert all(e.data == {"post_id": post.id} for e in deleted)
        await quiet(flive, 0.3, where=about(post.id))
        await quiet(alive, 0.2)


async def test_calls_pages_and_errors_over_the_socket(accounts: Accounts) -> None:
    me = await accounts.new("caller")
    other = await accounts.new("callee")
    async with me.client.live() as live:
        await live.ping()
        made = await live.call("post.create", content="over the socket", idempotency_key="ws-1")
        again = await live.call("post.create", content="over the socket", idempotency_key="ws-1")
        assert made["id"] == again["id"]
        page = await live.page("feed.page", Post, limit=5)
        assert isinstance(page, Page) and [p.id for p in page] == [made["id"]]
        assert page.next is None  # a short page is the last one
        users = await live.page("search", dict, q=other.username, type="users")
        assert [u["id"] for u in users] == [other.id]
        notes = await live.page("notifications.page", Notification)
        assert list(notes) == []
        assert await live.call("notifications.read") == {"count": 0}

        with pytest.raises(NotFound):
            await live.call("post.like", post_id="1234567")
        with pytest.raises(NotFound):
            await live.subscribe("post:1234567")
        with pytest.raises(ValidationError) as self_follow:
            await live.call("user.follow", user_id=me.id)
        assert self_follow.value.code == "cannot_follow_self"
        with pytest.raises(ValidationError):
            await live.call("post.create", content="")
        with pytest.raises(ProtocolError):
            await live.call("no.such.op")
        with pytest.raises(PayloadTooLarge):
            await live.call("post.create", content="x" * 70_000)  # refused locally
        await live.call("post.delete", post_id=made["id"])
        assert live.connected and live.reconnects == 0  # none of that cost the socket


# -- reconnect and resume ----------------------------------------------------------------


async def test_a_cut_connection_resumes_exactly(
    server: LiveServer, accounts: Accounts, proxy: TcpProxy
) -> None:
    author = await accounts.new("author")
    reader = await accounts.new("reader", base_url=proxy.base_url)
    await reader.client.follow(author.id)
    # The same user, straight to the server: it shows when events are in the history.
    watcher = accounts.client()
    await watcher.login(reader.username, PASSWORD)

    async with (
        reader.client.live(backoff=fast_backoff()) as live,
        watcher.live() as watch,
    ):
        await live.subscribe("feed")
        await watch.subscribe("feed")
        before = [(await author.client.create_post(f"before {i}")).id for i in range(2)]
        seen = await take(live, 2)
        assert [post_id_of(e) for e in seen] == before
        await take(watch, 2)
        epoch = seen[-1].epoch

        proxy.refuse()
        assert proxy.cut() >= 1  # the socket (and any pooled HTTP connection)
        await until(lambda: not live.connected, "the session to notice the cut")
        during = [(await author.client.create_post(f"during {i}")).id for i in range(3)]
        await take(watch, 3)  # published: now in the channel's history
        # A call made while the link is down waits for the new socket.
        like = asyncio.ensure_future(live.call("post.like", post_id=before[0]))
        await asyncio.sleep(0.3)  # a few refused reconnect attempts
        assert not like.done() and proxy.refused >= 1
        proxy.accept()

        missed = await take(live, 3)
        assert [post_id_of(e) for e in missed] == during  # exactly once, in order
        assert all(e.recovered and e.epoch == epoch for e in missed)
        assert (await asyncio.wait_for(like, 5))["like_count"] == 1
        after = (await author.client.create_post("after")).id
        (live_event,) = await take(live, 1)
        assert post_id_of(live_event) == after and not live_event.recovered
        await quiet(live, 0.3)
        assert live.reconnects == 1 and live.connected
        offsets = [int(e.offset or 0) for e in [*seen, *missed, live_event]]
        assert offsets == list(range(offsets[0], offsets[0] + 6))  # no gap, no repeat


async def test_resync_after_a_restart_that_lost_the_history(tmp_path: Path) -> None:
    workdir = tmp_path / "srv"
    workdir.mkdir()
    with running_server(workdir, TEST_ENV) as srv:
        async with TcpProxy("127.0.0.1", srv.port) as proxy, Accounts(srv.base_url) as pool:
            await _restart_scenario(srv, proxy, pool)


async def _restart_scenario(srv: LiveServer, proxy: TcpProxy, pool: Accounts) -> None:
    author = await pool.new("author")
    reader = await pool.new("reader", base_url=proxy.base_url)
    await reader.client.follow(author.id)

    async with reader.client.live(backoff=fast_backoff()) as live:
        await live.subscribe("feed")
        await live.subscribe(f"user:{author.id}")
        first = await author.client.create_post("first")
        a1 = (await author.client.create_post("a1")).id
        # (the follow's user.followed may trail in too: skipped)
        seen = await take(live, 4, where=lambda e: e.type == "post.created")
        assert [(e.channel, post_id_of(e)) for e in seen] == [
            ("feed", first.id),
            (f"user:{author.id}", first.id),
            ("feed", a1),
            (f"user:{author.id}", a1),
        ]
        channels = ["feed", f"user:{author.id}", "notifications", f"post:{first.id}"]
        for channel in channels[2:]:
            await live.subscribe(channel)
        old = live.positions

        # Restart: same workdir (the database survives), new process (history does not).
        proxy.refuse()
        await asyncio.to_thread(srv.stop)  # close_soon + 4000: the SDK starts reconnecting
        await until(lambda: live.close_code == 4000, "the graceful close (4000)")
        await asyncio.to_thread(srv.start)
        b1 = (await author.client.create_post("b1")).id  # the reader is away
        proxy.accept()
        await until(
            lambda: all(live.positions[c].epoch != old[c].epoch for c in channels),
            "every channel to be subscribed again, in its new epoch",
        )
        resumed = live.positions
        b2 = (await author.client.create_post("b2")).id  # the reader is back, not reading
        await until(
            lambda: live.positions["feed"].offset != resumed["feed"].offset,
            "b2's push to reach the session",
        )

        # A caller that stops waiting while the SDK fetches a resync page (here the fetch
        # hangs on a stalled connection) must get the resync event on its next call.
        proxy.hold()
        with pytest.raises(TimeoutError):
            await next_event(live, 0.3)
        assert proxy.held >= 1
        proxy.accept()

        resyncs = await take(live, len(channels))
        assert [e.type for e in resyncs] == [RESYNC] * len(channels)
        assert [e.channel for e in resyncs] == channels
        by_channel = {e.channel: e.data for e in resyncs}
        for data in by_channel.values():
            assert isinstance(data, Resync) and data.error is None and data.page is not None
        fresh = [p.id for p in await reader.client.feed()]
        assert fresh[:4] == [b2, b1, a1, first.id]
        assert [p.id for p in by_channel["feed"].page] == fresh  # the newest feed page
        assert [p.id for p in by_channel[f"user:{author.id}"].page] == fresh
        assert [p.id for p in by_channel[f"post:{first.id}"].page] == [first.id]
        assert all(isinstance(n, Notification) for n in by_channel["notifications"].page)

        b3 = (await author.client.create_post("b3")).id
        later = await take(live, 2)
        await quiet(live, 0.4)
        # b2 was in the refetched pages: its live push is not delivered a second time.
        assert created_ids(later, "feed") == [b3]
        assert created_ids(later, f"user:{author.id}") == [b3]
        assert live.reconnects >= 1


# -- tokens --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_ttl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("plaza-ttl"), SHORT_TTL) as live:
        yield live


def session_of(pair: TokenPair) -> str:
    claims = jwt.decode(
        pair.access_token, SECRET, algorithms=["HS256"], audience="plaza-api", issuer="plaza"
    )
    return str(claims["sid"])


def expiring_pair(pair: TokenPair, lifetime: int, *, tell_client: bool) -> TokenPair:
    """`pair` with an access token of the same login that expires in `lifetime` s (as the
    server would issue with that TTL). With `tell_client`, `expires_in` says one second
    less; without it the client does not know when the token expires."""
    claims = jwt.decode(
        pair.access_token, SECRET, algorithms=["HS256"], audience="plaza-api", issuer="plaza"
    )
    now = int(time.time())
    claims.update(iat=now, nbf=now, exp=now + lifetime, jti=uuid.uuid4().hex)
    return TokenPair(
        access_token=jwt.encode(claims, SECRET, algorithm="HS256"),
        refresh_token=pair.refresh_token,
        expires_in=lifetime - 1 if tell_client else None,
        user=pair.user,
    )


async def test_the_minimum_ttl_does_not_make_the_client_refresh_in_a_loop(
    short_ttl: LiveServer,
) -> None:
    async with Accounts(short_ttl.base_url) as pool:
        user = await pool.new("ttl")
        pair = user.client.tokens
        assert pair is not None and pair.expires_in == 30
        async with user.client.live() as live:
            await live.subscribe("feed")
            for _ in range(3):
                await user.client.me()
            await asyncio.sleep(0.5)
            assert live.connected
        assert user.client.tokens == pair  # 30 s tokens are refreshed near 24 s, not now


async def test_the_socket_is_reauthenticated_before_its_token_expires(
    short_ttl: LiveServer,
) -> None:
    async with Accounts(short_ttl.base_url) as pool:
        author = await pool.new("author")
        login = await pool.new("reader")
        await login.client.follow(author.id)
        assert login.client.tokens is not None
        reader = pool.client(expiring_pair(login.client.tokens, 4, tell_client=True))
        async with reader.live(backoff=fast_backoff()) as live:
            await live.subscribe("feed")
            assert live.session_id is None  # header auth: no auth reply yet
            early = (await author.client.create_post("early")).id
            assert post_id_of(await next_event(live)) == early
            await asyncio.sleep(4.3)  # past the first token's expiry
            late = (await author.client.create_post("late")).id
            assert post_id_of(await next_event(live)) == late
            assert live.reconnects == 0 and live.connected  # re-auth, no 4401
            assert live.session_id == session_of(login.client.tokens)  # the auth op's reply
        assert reader.tokens is not None
        assert reader.tokens.refresh_token != login.client.tokens.refresh_token


async def test_a_4401_on_expiry_refreshes_and_reconnects(short_ttl: LiveServer) -> None:
    async with Accounts(short_ttl.base_url) as pool:
        author = await pool.new("author")
        login = await pool.new("reader")
        await login.client.follow(author.id)
        assert login.client.tokens is not None
        # The client is not told when this token expires: the server's 4401 tells it.
        reader = pool.client(expiring_pair(login.client.tokens, 2, tell_client=False))
        async with reader.live(backoff=fast_backoff()) as live:
            await live.subscribe("feed")
            posts = [(await author.client.create_post("before")).id]
            await until(lambda: live.close_code == 4401, "the server's 4401", timeout=5)
            posts.append((await author.client.create_post("around")).id)
            await until(lambda: live.reconnects == 1 and live.connected, "the reconnect")
            posts.append((await author.client.create_post("after")).id)
            got = await take(live, 3)
            await quiet(live, 0.3)
        assert [post_id_of(e) for e in got] == posts  # resumed: nothing lost or repeated
        assert not any(e.type == RESYNC for e in got)
        assert reader.tokens is not None and reader.tokens.expires_in == 30


# -- sessions that end -------------------------------------------------------------------


async def test_logout_elsewhere_ends_the_session(accounts: Accounts) -> None:
    user = await accounts.new("leaver")
    assert user.client.tokens is not None
    # Another client holding the same login logs it out: the server closes this login's
    # sockets with 4401, and the SDK's refresh is refused, so the session ends.
    other = accounts.client(tokens=user.client.tokens)
    async with user.client.live(backoff=fast_backoff()) as live:
        await live.subscribe("feed")
        await other.logout()
        with pytest.raises(SessionClosed) as closed:
            await next_event(live)
        assert closed.value.close_code == 4401
        assert isinstance(closed.value.__cause__, AuthError)  # the refresh was refused
        assert live.reconnects == 0 and not live.connected
        with pytest.raises(SessionClosed):
            await live.call("ping")  # the session stays ended
    assert user.client.tokens is None


async def test_logout_all_from_another_login_ends_the_session(accounts: Accounts) -> None:
    user = await accounts.new("everywhere")
    laptop = accounts.client()
    await laptop.login(user.email, PASSWORD)
    async with user.client.live(backoff=fast_backoff()) as live:
        await live.subscribe("notifications")
        await laptop.logout_all()
        with pytest.raises(SessionClosed) as closed:
            await next_event(live)
        assert closed.value.close_code == 4401


async def test_a_4500_close_is_not_retried(accounts: Accounts, proxy: TcpProxy) -> None:
    user = await accounts.new("violator")
    client = accounts.client(user.client.tokens, base_url=proxy.base_url)
    async with client.live(backoff=fast_backoff()) as live:
        await live.subscribe("feed")
        assert proxy.accepted == 1
        for _ in range(12):  # more than 10 invalid frames a minute: close 4500
            with pytest.raises(PlazaError):
                await live.call("no.such.op")
        with pytest.raises(SessionClosed) as closed:
            await next_event(live)
        assert closed.value.close_code == 4500
        await asyncio.sleep(0.5)  # several backoff periods
        assert proxy.accepted == 1 and live.reconnects == 0  # never reconnected
    # Only that session ended: the login still works, and so does a new session.
    async with user.client.live() as fresh:
        await fresh.ping()
