"""The WebSocket session against a real `plaza serve`: auth, framing, errors, limits.
(The auth deadline is checked with a short one in test_ws_server.py.)"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from tests.support.clients import Ws, make_user
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.e2e


async def test_auth_by_header(server: LiveServer, http: httpx.AsyncClient) -> None:
    alice = await make_user(http, server.api)
    async with await Ws.connect(server.ws_url, alice.token) as ws:
        assert await ws.ok("ping") == {}
        sub = await ws.ok("subscribe", channel="feed")
        assert sub["channel"] == "feed" and sub["recovered"] is False


async def test_auth_by_first_frame(server: LiveServer, http: httpx.AsyncClient) -> None:
    alice = await make_user(http, server.api)
    async with await Ws.connect(server.ws_url) as ws:
        early = await ws.call("subscribe", channel="feed")
        assert early["ok"] is False and early["error"]["code"] == "unauthenticated"
        bad = await ws.call("auth", token="not-a-token")
        assert bad["ok"] is False and bad["error"]["code"] == "invalid_token"
        result = await ws.ok("auth", token=alice.token)  # a retry within the deadline
        assert result["user"]["id"] == alice.id
        assert result["user"]["email"].endswith("@example.com")
        assert result["heartbeat_s"] > 0 and result["session_id"]
        assert (await ws.ok("subscribe", channel="notifications"))["channel"] == "notifications"
        # Re-auth with a fresh token of the same user extends the session.
        assert (await ws.ok("auth", token=alice.token))["user"]["id"] == alice.id


async def test_reauth_as_another_user_is_refused(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    alice = await make_user(http, server.api)
    bob = await make_user(http, server.api)
    async with await Ws.connect(server.ws_url, alice.token) as ws:
        reply = await ws.call("auth", token=bob.token)
        assert reply["ok"] is False and reply["error"]["code"] == "invalid_token"
        assert (await ws.ok("subscribe", channel="feed"))["channel"] == "feed"


async def test_bad_header_token_closes_4401(server: LiveServer) -> None:
    async with await Ws.connect(server.ws_url, "garbage") as ws:
        assert await ws.closed_with() == 4401


async def test_token_in_url_is_ignored(server: LiveServer, http: httpx.AsyncClient) -> None:
    alice = await make_user(http, server.api)
    async with await Ws.connect(f"{server.ws_url}?token={alice.token}") as ws:
        reply = await ws.call("ping")
        assert reply["ok"] is False and reply["error"]["code"] == "unauthenticated"
    # ...and the query string never reaches the log.
    assert alice.token not in server.log()


async def test_foreign_origin_is_refused_at_upgrade(server: LiveServer) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(server.ws_url, origin=websockets.Origin("https://evil.example"))
    assert refused.value.response.status_code == 403
    own = websockets.Origin(f"http://127.0.0.1:{server.port}")
    async with await Ws.connect(server.ws_url, origin=own) as ws:
        assert (await ws.call("ping"))["error"]["code"] == "unauthenticated"


async def test_bad_frames_get_errors_and_the_socket_stays(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    alice = await make_user(http, server.api)
    async with await Ws.connect(server.ws_url, alice.token) as ws:
        await ws.send_raw("{not json")
        reply = await ws.reply(None)
        assert reply["ok"] is False and reply["error"]["code"] == "invalid_frame"
        await ws.send_raw("[1, 2]")
        assert (await ws.reply(None))["error"]["code"] == "invalid_frame"
        await ws.send_raw(json.dumps({"id": 7, "op": "fly"}))
        assert (await ws.reply(7))["error"]["code"] == "unknown_op"
        await ws.send_raw(json.dumps({"id": 8, "op": "post.like", "post_id": 5}))
        assert (await ws.reply(8))["error"]["code"] == "validation_error"
        reply = await ws.call("post.like", post_id="123456789")
        assert reply["error"]["code"] == "not_found" and reply["error"]["retryable"] is False
        reply = await ws.call("post.create", content="x" * 501)
        assert reply["error"]["code"] == "validation_error"
        assert await ws.ok("ping") == {}


async def test_flood_of_invalid_frames_closes_4500(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    alice = await make_user(http, server.api)
    async with await Ws.connect(server.ws_url, alice.token) as ws:
        for _ in range(11):
            await ws.send_raw("nope")
        assert await ws.closed_with() == 4500


async def test_frame_over_64_kib_closes_1009(server: LiveServer, http: httpx.AsyncClient) -> None:
    alice = await make_user(http, server.api)
    async with await Ws.connect(server.ws_url, alice.token) as ws:
        await ws.send_raw(json.dumps({"id": 1, "op": "ping", "pad": "x" * 70_000}))
        assert await ws.closed_with() == 1009


async def test_rate_limit_then_4008(server: LiveServer, http: httpx.AsyncClient) -> None:
    alice = await make_user(http, server.api)
    async with await Ws.connect(server.ws_url, alice.token) as ws:
        for i in range(60):
            await ws.send_raw(json.dumps({"id": i + 1, "op": "ping"}))
        replies = [await ws.reply(i + 1) for i in range(60)]
        limited = [r for r in replies if not r["ok"]]
        assert limited, "a burst over 50 must be limited"
        assert all(r["error"]["code"] == "rate_limited" for r in limited)
        assert limited[0]["error"]["retryable"] is True
        # Hammering on without backing off ends the session.
        for i in range(200):
            try:
                await ws.send_raw(json.dumps({"id": 1000 + i, "op": "ping"}))
            except websockets.ConnectionClosed:
                break
        assert await ws.closed_with() == 4008


async def test_at_most_ten_sockets_per_user(server: LiveServer, http: httpx.AsyncClient) -> None:
    alice = await make_user(http, server.api)
    sockets = [await Ws.connect(server.ws_url, alice.token) for _ in range(10)]
    try:
        for ws in sockets:
            assert await ws.ok("ping") == {}
        async with await Ws.connect(server.ws_url, alice.token) as eleventh:
            assert await eleventh.closed_with() == 4029
        # Authenticated by frame, the eleventh is closed the same way: no reply, no error.
        async with await Ws.connect(server.ws_url) as eleventh:
            await eleventh.send_raw(json.dumps({"id": 1, "op": "auth", "token": alice.token}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await eleventh.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4029
        assert "Traceback" not in server.log() and "op Auth failed" not in server.log()
    finally:
        for ws in sockets:
            await ws.close()
    # Closed sockets free their places.
    await asyncio.sleep(0.2)
    async with await Ws.connect(server.ws_url, alice.token) as again:
        assert await again.ok("ping") == {}


async def test_resubscribing_answers_the_same_way(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    alice = await make_user(http, server.api)
    async with await Ws.connect(server.ws_url, alice.token) as ws:
        first = await ws.ok("subscribe", channel="public")
        again = await ws.ok("subscribe", channel="public")
        assert first["channel"] == again["channel"] == "public"
        assert first["epoch"] == again["epoch"]
        await http.post(f"{server.api}/posts", json={"content": "once"}, headers=alice.auth)
        push = await ws.push()
        assert push["channel"] == "public" and push["event"]["type"] == "post.created"
        await ws.no_push()  # delivered once, though subscribed twice
        assert await ws.ok("unsubscribe", channel="public") == {}
        await http.post(f"{server.api}/posts", json={"content": "gone"}, headers=alice.auth)
        await ws.no_push()


async def test_channel_authorization(server: LiveServer, http: httpx.AsyncClient) -> None:
    alice = await make_user(http, server.api)
    bob = await make_user(http, server.api)
    post = await http.post(f"{server.api}/posts", json={"content": "mine"}, headers=alice.auth)
    assert post.status_code == 201
    async with await Ws.connect(server.ws_url, bob.token) as ws:
        for channel in (f"feed:{alice.id}", f"notifications:{alice.id}"):
            reply = await ws.call("subscribe", channel=channel)
            assert reply["error"]["code"] == "forbidden", reply
        for channel in ("bogus", "post:abc", "post:999999999", "user:0", "feed:"):
            reply = await ws.call("subscribe", channel=channel)
            assert reply["error"]["code"] == "not_found", (channel, reply)
        assert (await ws.ok("subscribe", channel=f"post:{post.json()['id']}"))["recovered"] is False
        assert (await ws.ok("subscribe", channel=f"user:{alice.id}"))[
            "channel"
        ] == f"user:{alice.id}"
        assert (await ws.ok("subscribe", channel=f"feed:{bob.id}"))["channel"] == "feed"
    blocked = await http.post(f"{server.api}/users/{bob.id}/block", headers=alice.auth)
    assert blocked.status_code == 200
    async with await Ws.connect(server.ws_url, bob.token) as ws:
        for channel in (f"post:{post.json()['id']}", f"user:{alice.id}"):
            reply = await ws.call("subscribe", channel=channel)
            assert reply["error"]["code"] == "not_found", reply


async def test_logout_closes_that_logins_sockets(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    alice = await make_user(http, server.api)
    async with await Ws.connect(server.ws_url, alice.token) as ws:
        assert await ws.ok("ping") == {}
        r = await http.post(f"{server.api}/auth/logout", json={"refresh_token": alice.refresh})
        assert r.status_code == 204
        assert await ws.closed_with() == 4401


async def test_every_action_over_the_socket_matches_rest(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    api = server.api
    me = await make_user(http, api, "me")
    other = await make_user(http, api, "other")
    async with await Ws.connect(server.ws_url, me.token) as ws:
        rel = await ws.ok("user.follow", user_id=other.id)
        assert rel == {
            "user_id": other.id,
            "following": True,
            "followed_by": False,
            "blocking": False,
        }
        r = await http.post(f"{api}/posts", json={"content": "other's words"}, headers=other.auth)
        theirs = r.json()
        post = await ws.ok("post.create", content="hello words", idempotency_key="k-1")
        again = await ws.ok("post.create", content="hello words", idempotency_key="k-1")
        assert again["id"] == post["id"]  # the same key never makes a second post
        rest_post = (await http.get(f"{api}/posts/{post['id']}", headers=me.auth)).json()
        assert rest_post == post
        await ws.ok("post.like", post_id=theirs["id"])
        comment = await ws.ok("comment.create", post_id=theirs["id"], content="a comment")
        rest_comments = (await http.get(f"{api}/posts/{theirs['id']}/comments")).json()
        assert rest_comments == [comment]

        page = await ws.ok("feed.page", limit=1)
        rest_feed = (await http.get(f"{api}/feed", params={"limit": 1}, headers=me.auth)).json()
        assert page["items"] == rest_feed and page["next_max_id"] == rest_feed[-1]["id"]
        older = await ws.ok("feed.page", max_id=page["next_max_id"], limit=40)
        rest_older = (
            await http.get(f"{api}/feed", params={"max_id": page["next_max_id"]}, headers=me.auth)
        ).json()
        assert older["items"] == rest_older and older["next_max_id"] is None

        found = await ws.ok("search", q="words", type="posts")
        assert {p["id"] for p in found["items"]} >= {post["id"], theirs["id"]}
        users = await ws.ok("search", q=other.username, type="users")
        assert [u["id"] for u in users["items"]] == [other.id]
        bad = await ws.call("search", q="   ", type="posts")
        assert bad["error"]["code"] == "validation_error"

        await ws.ok("post.delete", post_id=post["id"])
        gone = await http.get(f"{api}/posts/{post['id']}", headers=me.auth)
        assert gone.status_code == 404
        forbidden = await ws.call("post.delete", post_id=theirs["id"])
        assert forbidden["error"]["code"] == "forbidden"

        assert (await ws.ok("user.unfollow", user_id=other.id))["following"] is False
        assert (await ws.ok("user.block", user_id=other.id))["blocking"] is True
        assert (await ws.ok("user.unblock", user_id=other.id))["blocking"] is False
        self_follow = await ws.call("user.follow", user_id=me.id)
        assert self_follow["error"]["code"] == "cannot_follow_self"

    # notifications.page / notifications.read, seen from the other side
    async with await Ws.connect(server.ws_url, other.token) as ws:
        for _ in range(50):  # the like/comment/follow notifications arrive via the relay
            page = await ws.ok("notifications.page")
            if len(page["items"]) == 3:
                break
            await asyncio.sleep(0.05)
        assert sorted(n["kind"] for n in page["items"]) == ["comment", "follow", "like"]
        rest_notes = (
            await http.get(f"{api}/users/{other.id}/notifications", headers=other.auth)
        ).json()
        assert page["items"] == rest_notes
        newest = page["items"][0]["id"]
        assert await ws.ok("notifications.read", up_to_id=page["items"][1]["id"]) == {"count": 1}
        assert await ws.ok("notifications.read") == {"count": 0}
        after = (await http.get(f"{api}/notifications/unread_count", headers=other.auth)).json()
        assert after == {"count": 0} and newest


async def test_logout_everywhere_closes_every_socket_of_the_account(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    alice = await make_user(http, server.api)
    phone = await Ws.connect(server.ws_url, alice.token)
    laptop = await Ws.connect(server.ws_url, alice.token)
    try:
        assert await phone.ok("ping") == {} and await laptop.ok("ping") == {}
        r = await http.post(f"{server.api}/auth/logout_all", headers=alice.auth)
        assert r.status_code == 204
        assert await phone.closed_with() == 4401
        assert await laptop.closed_with() == 4401
        # and the old access token no longer opens a session
        async with await Ws.connect(server.ws_url, alice.token) as again:
            assert await again.closed_with() == 4401
    finally:
        await phone.close()
        await laptop.close()
