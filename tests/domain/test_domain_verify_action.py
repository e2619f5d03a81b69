"""Live events applied to stale state equal a fresh fetch (Zulip's verify_action).

A client fetches a first page, then only listens. After every action (and the relay that
delivers its events, sometimes twice: delivery is at least once) the client's state, built
from the pushes alone, must equal what a refetch returns, byte for byte on the wire.
"""

from __future__ import annotations

from typing import Any

import msgspec
from domain_world import World
from fakes import Published

from domain.events import decode_event
from domain.pagination import PageRequest

LIMIT = 5


def _wire(value: Any) -> Any:
    return msgspec.json.decode(msgspec.json.encode(value))


async def _deliver_twice(w: World) -> None:
    """The relay crashed after dispatching but before marking: everything comes again."""
    for entry in await w.store.outbox_reader.pending("fake", 1000):
        for consumer in w.consumers:
            await consumer.handle(decode_event(entry.event))
    await w.relay()


class NotificationsClient:
    def __init__(self, user_id: int, items: list[Any], unread: int) -> None:
        self.channel = f"notifications:{user_id}"
        self.items = {n["id"]: n for n in items}
        self.unread = unread
        self.seen = 0

    def catch_up(self, published: list[Published]) -> None:
        for push in published[self.seen :]:
            if push.channel != self.channel:
                continue
            data = push.json
            if push.type == "notification.created":
                self.items[data["id"]] = data
            elif push.type == "notifications.unread":
                self.unread = data["count"]
                if self.unread == 0:
                    for item in self.items.values():
                        item["read"] = True
            else:
                raise AssertionError(f"unexpected push {push.type}")
        self.seen = len(published)

    def marked_read_here(self, up_to_id: int | None) -> None:
        """The device that marked knows what it marked."""
        for item in self.items.values():
            if up_to_id is None or int(item["id"]) <= up_to_id:
                item["read"] = True

    def first_page(self) -> list[Any]:
        newest = sorted(self.items, key=int, reverse=True)[:LIMIT]
        return [self.items[i] for i in newest]


async def _fresh_notifications(w: World, user_id: int) -> tuple[list[Any], int]:
    page = (await w.notifications.page(user_id, user_id, PageRequest(limit=LIMIT))).items
    views = await w.presenter.notifications(page)
    return _wire(views), await w.notifications.unread_count(user_id)


async def test_notifications_events_applied_to_a_stale_page_equal_a_refetch(w: World) -> None:
    bob, alice, carol, dave, erin = await w.users("bob", "alice", "carol", "dave", "erin")
    p1, _ = await w.posts.create(bob.id, "first")
    p2, _ = await w.posts.create(bob.id, "second")
    await w.posts.like(p1.id, alice.id)
    await w.social.follow(carol.id, bob.id)
    await w.relay()

    client = NotificationsClient(bob.id, *await _fresh_notifications(w, bob.id))
    client.seen = len(w.publisher.published)
    assert client.unread == 2

    async def verify() -> None:
        client.catch_up(w.publisher.published)
        items, unread = await _fresh_notifications(w, bob.id)
        assert client.first_page() == items
        assert client.unread == unread

    async def step(action: Any, *, twice: bool = False) -> None:
        w.clock.advance(1)
        await action
        await (_deliver_twice(w) if twice else w.relay())
        await verify()

    await step(w.posts.like(p1.id, carol.id))
    await step(w.posts.comment(p2.id, alice.id, "nice"), twice=True)
    await step(w.posts.like(p2.id, bob.id))  # own action: nothing
    await step(w.social.follow(dave.id, bob.id), twice=True)
    # erin likes, but bob blocks her before the relay gets to it.
    await w.posts.like(p1.id, erin.id)
    await step(w.social.block(bob.id, erin.id))
    await step(w.posts.unlike(p1.id, alice.id))
    await step(w.posts.like(p1.id, alice.id))  # a new like, a new notification

    # This device reads up to the third newest; the other device learns only the count.
    up_to = int(client.first_page()[2]["id"])
    w.clock.advance(1)
    await w.notifications.mark_read(bob.id, up_to)
    client.marked_read_here(up_to)
    await w.relay()
    await verify()
    assert 0 < client.unread < len(client.items)

    for name in ("fan_1", "fan_2", "fan_3"):
        fan = await w.user(name)
        await step(w.social.follow(fan.id, bob.id))

    await step(w.notifications.mark_read(bob.id, None))  # from another device
    assert client.unread == 0
    assert all(n["read"] for n in client.first_page())


class FeedClient:
    def __init__(self, user_id: int, items: list[Any]) -> None:
        self.user_id = user_id
        self.items = {p["id"]: p for p in items}
        self.seen = 0

    def catch_up(self, published: list[Published]) -> None:
        for push in published[self.seen :]:
            data = push.json
            if push.channel == f"feed:{self.user_id}":
                if push.type == "post.created":
                    self.items[data["id"]] = data
                elif push.type == "post.deleted":
                    self.items.pop(data["post_id"], None)
            elif push.channel.startswith("post:") and push.channel[5:] in self.items:
                post = self.items[push.channel[5:]]
                if push.type in ("post.liked", "post.unliked"):
                    post["like_count"] = data["like_count"]
                    if data["user_id"] == str(self.user_id):
                        post["liked_by_me"] = push.type == "post.liked"
                elif push.type == "comment.created":
                    post["comment_count"] = data["comment_count"]
        self.seen = len(published)

    def first_page(self) -> list[Any]:
        newest = sorted(self.items, key=int, reverse=True)[:LIMIT]
        return [self.items[i] for i in newest]


async def _fresh_feed(w: World, user_id: int) -> list[Any]:
    posts = (await w.feed.home(user_id, PageRequest(limit=LIMIT))).items
    return _wire(await w.presenter.posts(posts, user_id))  # type: ignore[no-any-return]


async def test_feed_events_applied_to_a_stale_page_equal_a_refetch(w: World) -> None:
    bob, alice, carol, dave = await w.users("bob", "alice", "carol", "dave")
    await w.social.follow(bob.id, alice.id)
    await w.social.follow(bob.id, carol.id)
    old, _ = await w.posts.create(alice.id, "old news")
    await w.posts.create(dave.id, "not followed")
    await w.relay()

    client = FeedClient(bob.id, await _fresh_feed(w, bob.id))
    client.seen = len(w.publisher.published)

    async def step(action: Any, *, twice: bool = False) -> Any:
        w.clock.advance(1)
        result = await action
        await (_deliver_twice(w) if twice else w.relay())
        client.catch_up(w.publisher.published)
        assert client.first_page() == await _fresh_feed(w, bob.id)
        return result

    a1, _ = await step(w.posts.create(alice.id, "a1"))
    await step(w.posts.create(dave.id, "still not followed"))
    await step(w.posts.like(a1.id, bob.id))
    await step(w.posts.like(a1.id, carol.id), twice=True)
    await step(w.posts.comment(old.id, dave.id, "necro"))
    mine, _ = await step(w.posts.create(bob.id, "my own"), twice=True)
    # Several writes before one relay: the pushed post is rendered later than its likes.
    c1, _ = await w.posts.create(carol.id, "c1")
    await w.posts.like(c1.id, alice.id)
    await w.posts.like(c1.id, bob.id)
    await step(w.posts.unlike(c1.id, alice.id))
    await step(w.posts.unlike(a1.id, bob.id))
    await step(w.posts.delete(a1.id, alice.id), twice=True)
    await step(w.posts.delete(mine.id, bob.id))
    for i in range(4):
        await step(w.posts.create(carol.id, f"burst {i}"))
    assert [p["content"] for p in client.first_page()][:2] == ["burst 3", "burst 2"]
