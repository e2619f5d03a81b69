"""The client SDK's REST surface against a real `plaza serve` on loopback.

Every AsyncClient method is called against the real server, and the errors the server
answers come out as the SDK's documented exception classes. The blocking `Client` gets a
short scenario of its own, from plain code and from inside a running event loop (the SDK
says it works in Jupyter, where a loop already runs in the calling thread).
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from plaza_client import (
    AuthError,
    Client,
    Comment,
    Conflict,
    Forbidden,
    Media,
    NotFound,
    Notification,
    Page,
    PlazaError,
    Post,
    Relationship,
    TokenPair,
    UnsupportedMediaType,
    User,
    ValidationError,
)
from tests.support.live_server import LiveServer
from tests.support.sdk import PASSWORD, Accounts, eventually, png

pytestmark = pytest.mark.e2e


@pytest.fixture
async def accounts(server: LiveServer) -> AsyncIterator[Accounts]:
    async with Accounts(server.base_url) as pool:
        yield pool


# -- auth ----------------------------------------------------------------------------------


async def test_register_and_login_by_username_and_by_email(accounts: Accounts) -> None:
    alice = await accounts.new("alice", login=False)
    assert alice.user.username == alice.username
    assert alice.user.email == alice.email  # register answers Me
    assert alice.client.tokens is None  # and issues no tokens

    pair = await alice.client.login(alice.username, PASSWORD)
    assert isinstance(pair, TokenPair)
    assert pair.token_type == "Bearer" and pair.expires_in == 900
    assert pair.user is not None and pair.user.id == alice.id
    assert alice.client.tokens == pair and alice.client.user == pair.user

    by_email = accounts.client()
    pair2 = await by_email.login(alice.email.upper(), PASSWORD)  # emails ignore case
    assert pair2.user is not None and pair2.user.id == alice.id
    assert pair2.refresh_token != pair.refresh_token  # a second, separate login

    me = await by_email.me()
    assert me.id == alice.id and me.email == alice.email


async def test_refresh_rotates_the_pair_and_logout_revokes_it(accounts: Accounts) -> None:
    bob = await accounts.new("bob")
    first = bob.client.tokens
    assert first is not None
    second = await bob.client.refresh()
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    assert bob.client.tokens == second
    assert second.user is not None and second.user.id == bob.id
    assert (await bob.client.me()).id == bob.id  # the new access token works

    await bob.client.logout()
    assert bob.client.tokens is None and bob.client.user is None
    with pytest.raises(AuthError):
        await bob.client.me()  # not logged in any more
    # The server revoked the login: its refresh token is refused from anywhere.
    replay = accounts.client(tokens=second)
    with pytest.raises(AuthError) as refused:
        await replay.refresh()
    assert refused.value.status == 401
    assert replay.tokens is None
    await bob.client.logout()  # logging out twice is a no-op


async def test_change_password_and_logout_all(accounts: Accounts) -> None:
    carol = await accounts.new("carol")
    other_device = accounts.client()
    await other_device.login(carol.email, PASSWORD)

    before = carol.client.tokens
    with pytest.raises(AuthError) as wrong:
        await carol.client.change_password("not the password", "another good password")
    assert wrong.value.code == "invalid_credentials"
    # A wrong password is not a token problem: no refresh, no second attempt.
    assert carol.client.tokens == before

    await carol.client.change_password(PASSWORD, "another good password")
    # Every token of the account was revoked, the caller's included.
    with pytest.raises(AuthError):
        await carol.client.me()
    with pytest.raises(AuthError) as old:
        await accounts.client().login(carol.username, PASSWORD)
    assert old.value.code == "invalid_credentials"
    phone = accounts.client()
    laptop = accounts.client()
    await phone.login(carol.username, "another good password")
    await laptop.login(carol.username, "another good password")

    await phone.logout_all()
    assert phone.tokens is None
    with pytest.raises(AuthError):
        await laptop.me()  # its access token is dead, and so is its refresh token
    assert laptop.tokens is None


# -- users and relationships -------------------------------------------------------------


async def test_profiles(accounts: Accounts) -> None:
    dave = await accounts.new("dave")
    erin = await accounts.new("erin")

    me = await dave.client.me()
    assert me.id == dave.id and me.email == dave.email
    seen = await erin.client.get_user(dave.id)
    assert seen.id == dave.id and seen.username == dave.username
    assert not hasattr(seen, "email")  # only Me carries an email

    avatar = await dave.client.upload_media(png())
    updated = await dave.client.update_profile(
        display_name="Dave D.", bio="hello there", avatar_media_id=avatar.id
    )
    assert (updated.display_name, updated.bio, updated.avatar_media_id) == (
        "Dave D.",
        "hello there",
        avatar.id,
    )
    assert dave.client.user is not None and dave.client.user.email == dave.email
    # A partial update keeps the other fields; clear_avatar sends null.
    again = await dave.client.update_profile(bio="changed", clear_avatar=True)
    assert (again.display_name, again.bio, again.avatar_media_id) == ("Dave D.", "changed", None)
    assert (await erin.client.get_user(dave.id)).bio == "changed"

    with pytest.raises(ValidationError) as bad:
        await dave.client.update_profile(display_name="x" * 51)
    assert bad.value.status == 422
    with pytest.raises(ValidationError) as foreign:
        erin_avatar = await erin.client.upload_media(png())
        await dave.client.update_profile(avatar_media_id=erin_avatar.id)
    assert foreign.value.code == "invalid_media"
    with pytest.raises(NotFound):
        await erin.client.get_user("1234567")


async def test_follow_unfollow_block_unblock(accounts: Accounts) -> None:
    fan = await accounts.new("fan")
    star = await accounts.new("star")

    rel = await fan.client.follow(star.id)
    assert isinstance(rel, Relationship)
    assert (rel.user_id, rel.following, rel.followed_by, rel.blocking) == (
        star.id,
        True,
        False,
        False,
    )
    assert (await fan.client.follow(star.id)).following  # idempotent
    assert (await star.client.relationship(fan.id)).followed_by
    followers = await star.client.followers(star.id)
    assert [u.id for u in followers] == [fan.id]
    following = await fan.client.following(fan.id)
    assert [u.id for u in following] == [star.id]
    assert isinstance(followers, Page) and followers.next is not None

    rel = await fan.client.unfollow(star.id)
    assert not rel.following
    assert list(await star.client.followers(star.id)) == []

    with pytest.raises(ValidationError) as self_follow:
        await fan.client.follow(fan.id)
    assert self_follow.value.code == "cannot_follow_self"

    rel = await star.client.block(fan.id)
    assert rel.blocking and not rel.following
    with pytest.raises(NotFound):
        await fan.client.follow(star.id)  # they block you: not found
    with pytest.raises(Forbidden) as blocked:
        await star.client.follow(fan.id)  # you block them: forbidden
    assert blocked.value.code == "blocked"
    rel = await star.client.unblock(fan.id)
    assert not rel.blocking
    assert (await fan.client.follow(star.id)).following


# -- posts, likes, comments --------------------------------------------------------------


async def test_posts_likes_and_comments(accounts: Accounts) -> None:
    author = await accounts.new("author")
    reader = await accounts.new("reader")

    post = await author.client.create_post("hello, plaza", idempotency_key="k-1")
    again = await author.client.create_post("hello, plaza", idempotency_key="k-1")
    assert again.id == post.id  # the same key: the same post, not a second one
    other = await author.client.create_post("hello, plaza", idempotency_key="k-2")
    assert other.id != post.id
    assert [p.id for p in await author.client.user_posts(author.id)] == [other.id, post.id]

    fetched = await reader.client.get_post(post.id)
    assert (fetched.id, fetched.content, fetched.author.id) == (post.id, "hello, plaza", author.id)
    assert fetched.like_count == 0 and not fetched.liked_by_me and fetched.media == []

    liked = await reader.client.like(post.id)
    assert liked.like_count == 1 and liked.liked_by_me
    assert (await reader.client.like(post.id)).like_count == 1  # idempotent
    assert (await author.client.like(post.id)).like_count == 2
    assert {u.id for u in await author.client.likes(post.id)} == {reader.id, author.id}
    unliked = await reader.client.unlike(post.id)
    assert unliked.like_count == 1 and not unliked.liked_by_me
    assert [u.id for u in await reader.client.likes(post.id)] == [author.id]

    comment = await reader.client.comment(post.id, "nice one")
    assert isinstance(comment, Comment)
    assert (comment.post_id, comment.author.id, comment.content) == (post.id, reader.id, "nice one")
    second = await author.client.comment(post.id, "thanks")
    assert [c.id for c in await reader.client.comments(post.id)] == [second.id, comment.id]
    assert (await reader.client.get_post(post.id)).comment_count == 2

    with pytest.raises(Forbidden):
        await reader.client.delete_post(post.id)  # only the author
    await author.client.delete_post(post.id)
    with pytest.raises(NotFound):
        await reader.client.get_post(post.id)
    with pytest.raises(NotFound):
        await reader.client.like(post.id)
    with pytest.raises(ValidationError) as too_long:
        await author.client.create_post("x" * 501)
    assert too_long.value.status == 422 and too_long.value.code == "validation_error"
    with pytest.raises(ValidationError):
        await author.client.comment(other.id, "   ")


async def test_feed_pages_back_with_next(accounts: Accounts) -> None:
    author = await accounts.new("writer")
    reader = await accounts.new("follower")
    await reader.client.follow(author.id)
    posted = [(await author.client.create_post(f"post {i}")).id for i in range(5)]
    mine = (await reader.client.create_post("my own")).id
    newest_first = [mine, *reversed(posted)]

    seen: list[str] = []
    page = await reader.client.feed(limit=2)
    pages = 0
    while page:
        pages += 1
        assert len(page) <= 2
        seen.extend(p.id for p in page)
        assert page.next == page[-1].id
        page = await reader.client.feed(limit=2, max_id=page.next)
    assert page.next is None  # the empty page at the end
    assert seen == newest_first and pages == 3

    # since_id / min_id look forwards from a cursor.
    newer = await reader.client.feed(since_id=posted[2])
    assert [p.id for p in newer] == [mine, posted[4], posted[3]]
    right_after = await reader.client.feed(min_id=posted[0], limit=2)
    assert [p.id for p in right_after] == [posted[2], posted[1]]
    assert right_after.prev == posted[2]

    # user_posts pages the same way.
    first = await reader.client.user_posts(author.id, limit=3)
    rest = await reader.client.user_posts(author.id, max_id=first.next)
    assert [p.id for p in [*first, *rest]] == list(reversed(posted))


async def test_notifications_unread_and_mark_read(accounts: Accounts) -> None:
    owner = await accounts.new("owner")
    fan = await accounts.new("fanatic")
    post = await owner.client.create_post("notify me")
    await fan.client.follow(owner.id)
    await fan.client.like(post.id)
    comment = await fan.client.comment(post.id, "hi")

    notes = await eventually(owner.client.notifications, lambda page: len(page) >= 3)
    assert all(isinstance(n, Notification) for n in notes)
    assert [n.kind for n in notes] == ["comment", "like", "follow"]
    assert {n.actor.id for n in notes} == {fan.id}
    assert notes[0].post_id == post.id and notes[0].comment_id == comment.id
    assert notes[1].post_id == post.id and notes[1].comment_id is None
    assert notes[2].post_id is None
    assert not any(n.read for n in notes)
    assert await owner.client.unread_count() == 3
    assert list(await fan.client.notifications()) == []  # own actions notify nobody

    older = await owner.client.notifications(limit=2)
    assert len(older) == 2
    assert [n.id for n in await owner.client.notifications(max_id=older.next)] == [notes[2].id]

    assert await owner.client.mark_read(up_to_id=notes[1].id) == 1
    assert await owner.client.unread_count() == 1
    assert [n.read for n in await owner.client.notifications()] == [False, True, True]
    assert await owner.client.mark_read() == 0
    assert await owner.client.unread_count() == 0


async def test_search_users_and_posts(accounts: Accounts) -> None:
    word = f"zq{uuid.uuid4().hex[:8]}"
    finder = await accounts.new("finder")
    target = await accounts.new(word)
    post = await target.client.create_post(f"a post about {word} and more")

    users = await finder.client.search(word, "users")
    assert [u.id for u in users] == [target.id]
    assert all(isinstance(u, User) for u in users)
    posts = await finder.client.search(word)  # type defaults to posts
    assert [p.id for p in posts] == [post.id]
    assert all(isinstance(p, Post) for p in posts)
    assert list(await finder.client.search(f"nothing{word}", "posts")) == []
    with pytest.raises(ValidationError):
        await finder.client.search("", "users")


# -- media -------------------------------------------------------------------------------


async def test_upload_media_and_fetch_its_bytes(accounts: Accounts, tmp_path: Path) -> None:
    owner = await accounts.new("photographer")
    data = png(12, 7)

    media = await owner.client.upload_media(data)
    assert isinstance(media, Media)
    assert (media.content_type, media.width, media.height) == ("image/png", 12, 7)
    assert media.url == f"/api/v1/media/{media.id}"
    stored = await owner.client.media_bytes(media.id)
    assert len(stored) == media.size
    with Image.open(io.BytesIO(stored)) as image:
        pixel = image.getpixel((0, 0))  # a tuple for RGB(A); Pillow types every mode
        assert image.size == (12, 7) and isinstance(pixel, tuple) and pixel[:3] == (200, 30, 30)

    path = tmp_path / "photo.png"
    path.write_bytes(png(3, 4))
    from_path = await owner.client.upload_media(path)
    with path.open("rb") as fh:
        from_file = await owner.client.upload_media(fh)
    assert (from_path.width, from_path.height) == (from_file.width, from_file.height) == (3, 4)

    post = await owner.client.create_post("with pictures", media_ids=[media.id, from_path.id])
    assert [m.id for m in post.media] == [media.id, from_path.id]
    assert post.media[0] == media

    with pytest.raises(UnsupportedMediaType) as text:
        await owner.client.upload_media(b"just some text\n", filename="notes.txt")
    assert isinstance(text.value, ValidationError)
    assert text.value.status == 415 and text.value.code == "unsupported_media_type"
    noisy = io.BytesIO()
    Image.effect_noise((64, 64), 80).convert("RGB").save(noisy, "PNG")
    with pytest.raises(ValidationError) as damaged:  # cut in the middle of its pixels
        await owner.client.upload_media(noisy.getvalue()[: len(noisy.getvalue()) // 2])
    assert damaged.value.code == "invalid_image"
    with pytest.raises(NotFound):
        await owner.client.media_bytes("1234567")


# -- service and errors ------------------------------------------------------------------


async def test_health_and_ready(accounts: Accounts) -> None:
    anonymous = accounts.client()
    assert await anonymous.health() is True
    assert await anonymous.ready() is True


async def test_errors_map_to_their_classes(accounts: Accounts, server: LiveServer) -> None:
    taken = await accounts.new("taken")
    anonymous = accounts.client()

    with pytest.raises(Conflict) as username:
        await anonymous.register(taken.username.upper(), "other@example.com", PASSWORD)
    assert (username.value.status, username.value.code) == (409, "username_taken")
    with pytest.raises(Conflict) as email:
        await anonymous.register("someone_else_x", taken.email, PASSWORD)
    assert email.value.code == "email_taken"
    with pytest.raises(ValidationError) as short:
        await anonymous.register("shorty_pw", "shorty@example.com", "short")
    assert short.value.status == 422 and short.value.message

    with pytest.raises(AuthError) as bad_login:
        await anonymous.login(taken.username, "wrong password!")
    assert (bad_login.value.status, bad_login.value.code) == (401, "invalid_credentials")
    with pytest.raises(AuthError) as nobody:
        await anonymous.login("nobody@example.com", PASSWORD)
    assert nobody.value.code == "invalid_credentials"
    with pytest.raises(AuthError):
        await anonymous.feed()  # not logged in

    with pytest.raises(NotFound) as missing:
        await taken.client.get_post("1234567")
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    with pytest.raises(ValidationError):
        await taken.client.get_post("not-an-id")
    other = await accounts.new("other")
    with pytest.raises(Forbidden) as foreign:  # another user's notifications
        await taken.client.transport.request("GET", f"/users/{other.id}/notifications")
    assert (foreign.value.status, foreign.value.code) == (403, "forbidden")
    assert all(
        isinstance(e.value, PlazaError) for e in (username, short, bad_login, missing, foreign)
    )


async def test_a_bad_access_token_is_refreshed_once(accounts: Accounts) -> None:
    """A request answered 401 refreshes the pair and is retried (README: Tokens)."""
    user = await accounts.new("stale")
    tokens = user.client.tokens
    assert tokens is not None
    broken = TokenPair(
        access_token=tokens.access_token[:-4] + "AAAA",
        refresh_token=tokens.refresh_token,
        expires_in=900,
        user=tokens.user,
    )
    client = accounts.client(tokens=broken)
    assert (await client.me()).id == user.id
    assert client.tokens is not None and client.tokens.refresh_token != tokens.refresh_token


# -- the blocking Client -----------------------------------------------------------------


def _sync_scenario(base_url: str) -> None:
    name = f"sync_{uuid.uuid4().hex[:10]}"
    with Client(base_url) as c:
        user = c.register(name, f"{name}@example.com", PASSWORD)
        pair = c.login(name, PASSWORD)
        assert pair.user is not None and pair.user.id == user.id
        with c.live() as live:
            sub = live.subscribe("feed")
            assert sub.channel == "feed" and not sub.recovered
            post = c.create_post("from sync code")
            event = live.next_event(timeout=5)
            assert event is not None
            assert (event.channel, event.type) == ("feed", "post.created")
            assert isinstance(event.data, Post) and event.data.id == post.id
            liked = live.call("post.like", post_id=post.id)
            assert liked["like_count"] == 1
        page = c.feed(limit=20)
        assert [p.id for p in page] == [post.id]
        assert c.feed(max_id=page.next) == []
        assert c.get_post(post.id).like_count == 1


def test_sync_client_scenario(server: LiveServer) -> None:
    _sync_scenario(server.base_url)


async def test_sync_client_inside_a_running_event_loop(server: LiveServer) -> None:
    # This coroutine runs on the test's loop, like a Jupyter cell: the Client blocks this
    # thread while its own loop thread does the work.
    asyncio.get_running_loop()
    _sync_scenario(server.base_url)
