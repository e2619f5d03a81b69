"""Live events and resume against a real `plaza serve` (one process, memory backend)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.clients import Ws, make_user
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.e2e


def kinds(pushes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(p["channel"], p["event"]["type"]) for p in pushes]


async def test_a_push_for_each_event_kind(server: LiveServer, http: httpx.AsyncClient) -> None:
    api = server.api
    author = await make_user(http, api, "author")
    fan = await make_user(http, api, "fan")
    async with (
        await Ws.connect(server.ws_url, author.token) as aws,
        await Ws.connect(server.ws_url, fan.token) as fws,
    ):
        await aws.ok("subscribe", channel="notifications")
        await fws.ok("subscribe", channel="feed")
        await fws.ok("subscribe", channel=f"user:{author.id}")
        await fws.ok("subscribe", channel="public")

        # follow → the author is notified (notification + unread count)
        await fws.ok("user.follow", user_id=author.id)
        note, unread = await aws.pushes_until(2)
        assert note["event"]["type"] == "notification.created"
        assert note["event"]["data"]["kind"] == "follow"
        assert note["event"]["data"]["actor"]["id"] == fan.id
        assert unread["event"] == {"type": "notifications.unread", "data": {"count": 1}}
        followed = await fws.push()  # profile screens learn of new followers
        assert followed["channel"] == f"user:{author.id}"
        assert followed["event"]["type"] == "user.followed"
        assert followed["event"]["data"]["follower"]["id"] == fan.id

        # post.created → the follower's feed, the author's user channel and public
        r = await http.post(f"{api}/posts", json={"content": "live!"}, headers=author.auth)
        post = r.json()
        pushes = await fws.pushes_until(3)
        assert sorted(kinds(pushes)) == sorted(
            [
                ("feed", "post.created"),
                (f"user:{author.id}", "post.created"),
                ("public", "post.created"),
            ]
        )
        for push in pushes:
            assert push["event"]["data"]["id"] == post["id"]
            assert push["event"]["data"]["author"]["id"] == author.id
            assert "email" not in push["event"]["data"]["author"]

        # likes and comments → post:{id}, and notifications for the author
        await fws.ok("subscribe", channel=f"post:{post['id']}")
        liked = await fws.ok("post.like", post_id=post["id"])
        assert liked["like_count"] == 1 and liked["liked_by_me"] is True
        push = await fws.push()
        assert push["channel"] == f"post:{post['id']}"
        assert push["event"] == {
            "type": "post.liked",
            "data": {"post_id": post["id"], "user_id": fan.id, "like_count": 1},
        }
        note, unread = await aws.pushes_until(2)
        assert note["event"]["data"]["kind"] == "like"
        assert note["event"]["data"]["post_id"] == post["id"]
        assert unread["event"]["data"] == {"count": 2}

        comment = await fws.ok("comment.create", post_id=post["id"], content="nice")
        push = await fws.push()
        assert push["event"]["type"] == "comment.created"
        assert push["event"]["data"]["comment"]["id"] == comment["id"]
        assert push["event"]["data"]["comment_count"] == 1
        note, unread = await aws.pushes_until(2)
        assert note["event"]["data"]["kind"] == "comment"
        assert note["event"]["data"]["comment_id"] == comment["id"]
        assert unread["event"]["data"] == {"count": 3}

        await fws.ok("post.unlike", post_id=post["id"])
        push = await fws.push()
        assert push["event"]["type"] == "post.unliked"
        assert push["event"]["data"]["like_count"] == 0

        # mark-read on one device pushes the new count to the others
        r = await http.post(f"{api}/notifications/read", json={}, headers=author.auth)
        assert r.status_code == 200
        push = await aws.push()
        assert push["event"] == {"type": "notifications.unread", "data": {"count": 0}}

        # post.deleted follows post.created's routes
        r = await http.delete(f"{api}/posts/{post['id']}", headers=author.auth)
        assert r.status_code == 204
        pushes = await fws.pushes_until(3)
        assert {p["event"]["type"] for p in pushes} == {"post.deleted"}
        assert {p["event"]["data"]["post_id"] for p in pushes} == {post["id"]}
        await fws.no_push()
        await aws.no_push()


async def test_own_actions_do_not_notify_and_blocks_stop_pushes(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    api = server.api
    alice = await make_user(http, api)
    mallory = await make_user(http, api)
    async with (
        await Ws.connect(server.ws_url, alice.token) as aws,
        await Ws.connect(server.ws_url, mallory.token) as mws,
    ):
        await aws.ok("subscribe", channel="notifications")
        await mws.ok("subscribe", channel="feed")
        await mws.ok("user.follow", user_id=alice.id)
        await aws.pushes_until(2)  # the follow notification and count
        mine = await aws.ok("post.create", content="my own")
        await aws.ok("post.like", post_id=mine["id"])
        await aws.no_push()  # liking your own post notifies nobody
        assert (await mws.push())["event"]["type"] == "post.created"
        await aws.ok("user.block", user_id=mallory.id)
        await aws.ok("post.create", content="not for mallory")
        await mws.no_push()  # the block ended the follow: no feed push
        reply = await mws.call("post.like", post_id=mine["id"])
        assert reply["error"]["code"] == "not_found"
        await aws.no_push()


async def test_resume_gets_exactly_what_was_missed(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    api = server.api
    author = await make_user(http, api)
    reader = await make_user(http, api)
    await http.post(f"{api}/users/{author.id}/follow", headers=reader.auth)

    async def post(text: str) -> str:
        r = await http.post(f"{api}/posts", json={"content": text}, headers=author.auth)
        assert r.status_code == 201
        return str(r.json()["id"])

    async with await Ws.connect(server.ws_url, reader.token) as ws:
        await ws.ok("subscribe", channel="feed")
        seen = [await post(f"before {i}") for i in range(3)]
        pushes = await ws.pushes_until(3)
        assert [p["event"]["data"]["id"] for p in pushes] == seen
        last = {"offset": pushes[-1]["offset"], "epoch": pushes[-1]["epoch"]}

    missed = [await post(f"while away {i}") for i in range(4)]

    async with await Ws.connect(server.ws_url, reader.token) as ws:
        result = await ws.ok("subscribe", channel="feed", since=last)
        assert result["recovered"] is True
        # Writes reply before their events are relayed, so the newest of the missed posts
        # may still be on its way: what the reply lacks must follow live, once, in order.
        events = result["events"]
        while len(events) < len(missed):
            events.append(await ws.push())
        assert [e["event"]["data"]["id"] for e in events] == missed
        offsets = [int(e["offset"]) for e in events]
        assert offsets == list(range(int(last["offset"]) + 1, int(last["offset"]) + 5))
        live = await post("after")
        push = await ws.push()
        assert push["event"]["data"]["id"] == live
        assert int(push["offset"]) == offsets[-1] + 1  # no gap
        await ws.no_push()  # and no duplicate

        # Resuming from the newest position recovers nothing and misses nothing.
        again = await ws.ok(
            "subscribe", channel="feed", since={"offset": push["offset"], "epoch": push["epoch"]}
        )
        assert again["recovered"] is True and again["events"] == []


async def test_unrecoverable_since_says_so(server: LiveServer, http: httpx.AsyncClient) -> None:
    reader = await make_user(http, server.api)
    async with await Ws.connect(server.ws_url, reader.token) as ws:
        current = await ws.ok("subscribe", channel="feed")
        for since in (
            {"offset": current["offset"], "epoch": "another-epoch"},
            {"offset": "not-an-offset", "epoch": current["epoch"]},
            "garbage",
            {"offset": "999999", "epoch": current["epoch"]},
        ):
            result = await ws.ok("subscribe", channel="feed", since=since)
            assert result["recovered"] is False, since
            assert result["events"] == []
            assert result["epoch"] == current["epoch"]


async def test_live_events_applied_to_a_first_page_equal_a_fresh_fetch(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    """Zulip's verify_action, end to end: state built from the first REST page plus the
    live events must equal what a fresh REST fetch returns."""
    api = server.api
    me = await make_user(http, api, "me")
    friends = [await make_user(http, api, "friend") for _ in range(3)]
    for friend in friends:
        await http.post(f"{api}/users/{friend.id}/follow", headers=me.auth)
    first = await http.post(f"{api}/posts", json={"content": "old"}, headers=friends[0].auth)
    mine = await http.post(f"{api}/posts", json={"content": "mine"}, headers=me.auth)

    async with await Ws.connect(server.ws_url, me.token) as ws:
        # Subscribe first, then fetch: every change after the fetch is then in the stream
        # (events from just before it may be too, so applying is idempotent by id).
        await ws.ok("subscribe", channel="feed")
        await ws.ok("subscribe", channel="notifications")
        feed = (await http.get(f"{api}/feed", headers=me.auth)).json()
        notes = (await http.get(f"{api}/users/{me.id}/notifications", headers=me.auth)).json()
        unread_r = await http.get(f"{api}/notifications/unread_count", headers=me.auth)
        unread = unread_r.json()["count"]
        # Activity from several users, over REST and over the socket.
        a = await http.post(f"{api}/posts", json={"content": "a"}, headers=friends[1].auth)
        await http.post(f"{api}/posts/{mine.json()['id']}/likes", headers=friends[2].auth)
        await http.post(
            f"{api}/posts/{mine.json()['id']}/comments",
            json={"content": "hey"},
            headers=friends[0].auth,
        )
        await http.post(f"{api}/users/{me.id}/follow", headers=friends[1].auth)
        await ws.ok("post.create", content="from the socket")
        await http.delete(f"{api}/posts/{first.json()['id']}", headers=friends[0].auth)
        await http.delete(f"{api}/posts/{a.json()['id']}", headers=friends[1].auth)
        await http.post(f"{api}/posts", json={"content": "b"}, headers=friends[2].auth)

        # 4 feed events... wait for the last one, then apply everything in order.
        pushes: list[dict[str, Any]] = []
        while not any(
            p["event"]["type"] == "post.created" and p["event"]["data"]["content"] == "b"
            for p in pushes
        ):
            pushes.append(await ws.push())
        while True:  # notifications may trail the feed by a little
            try:
                pushes.append(await ws.push(timeout=0.5))
            except TimeoutError:
                break

    for push in pushes:
        event = push["event"]
        if push["channel"] == "feed" and event["type"] == "post.created":
            if all(p["id"] != event["data"]["id"] for p in feed):
                feed.insert(0, event["data"])
        elif push["channel"] == "feed" and event["type"] == "post.deleted":
            feed = [p for p in feed if p["id"] != event["data"]["post_id"]]
        elif event["type"] == "notification.created":
            if all(n["id"] != event["data"]["id"] for n in notes):
                notes.insert(0, event["data"])
        elif event["type"] == "notifications.unread":
            unread = event["data"]["count"]

    fresh_feed = (await http.get(f"{api}/feed", headers=me.auth)).json()
    fresh_notes = (await http.get(f"{api}/users/{me.id}/notifications", headers=me.auth)).json()
    fresh_unread = (await http.get(f"{api}/notifications/unread_count", headers=me.auth)).json()
    assert [p["id"] for p in feed] == [p["id"] for p in fresh_feed]
    assert [p["content"] for p in feed] == [p["content"] for p in fresh_feed]
    assert [(n["id"], n["kind"], n["actor"]["id"]) for n in notes] == [
        (n["id"], n["kind"], n["actor"]["id"]) for n in fresh_notes
    ]
    assert unread == fresh_unread["count"] == 3
