"""Event-log consumers: notifications, live routing and feed fan-out, under at-least-once
delivery."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from domain_world import World

from domain.consumers import Kind
from domain.events import (
    BlockCreated,
    CommentCreated,
    DomainEvent,
    FollowCreated,
    FollowRemoved,
    LikeCreated,
    LikeRemoved,
    NotificationsRead,
    PostCreated,
    PostDeleted,
    decode_event,
    encode_event,
    ordering_key,
)
from domain.models import Account, Post
from domain.pagination import PageRequest

# --- events on the wire of the event log --------------------------------------------------


AT = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
EVENTS: list[DomainEvent] = [
    PostCreated(event_id=1, at=AT, post_id=2, author_id=3),
    PostDeleted(event_id=1, at=AT, post_id=2, author_id=3),
    LikeCreated(event_id=1, at=AT, post_id=2, post_author_id=3, user_id=4, like_count=5),
    LikeRemoved(event_id=1, at=AT, post_id=2, post_author_id=3, user_id=4, like_count=0),
    CommentCreated(
        event_id=1, at=AT, comment_id=9, post_id=2, post_author_id=3, author_id=4, comment_count=1
    ),
    FollowCreated(event_id=1, at=AT, follower_id=2, followed_id=3),
    FollowRemoved(event_id=1, at=AT, follower_id=2, followed_id=3),
    BlockCreated(event_id=1, at=AT, blocker_id=2, blocked_id=3),
    NotificationsRead(event_id=1, at=AT, user_id=2),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_event_round_trips(event: DomainEvent) -> None:
    data = encode_event(event)
    assert decode_event(data) == event
    assert msgspec.json.decode(data)["type"] == type(event).__struct_config__.tag


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_event_has_an_ordering_key(event: DomainEvent) -> None:
    # A post's creation and deletion by its author (3 here), what happens to it afterwards
    # by the post (2); relations and read marks by the acting user (2, never the other
    # party, 3).
    by_author = isinstance(event, PostCreated | PostDeleted)
    assert ordering_key(event) == (3 if by_author else 2)


def test_the_consumer_kinds() -> None:
    assert [str(k) for k in Kind] == ["feed", "notifications", "live"]


async def _liked_post(w: World) -> tuple[Account, Account, Post]:
    alice, bob = await w.users("alice", "bob")
    post, _ = await w.posts.create(alice.id, "hello")
    await w.posts.like(post.id, bob.id)
    return alice, bob, post


# --- notifications --------------------------------------------------------------------------


async def test_a_push_that_failed_after_the_row_committed_is_retried_and_never_doubled(
    w: World,
) -> None:
    alice, _, _ = await _liked_post(w)
    [like] = w.store.events_of(LikeCreated)
    real_publish = w.publisher.publish
    failures = 1

    async def flaky(channel: str, event_type: str, data: object, *, key: str) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise ConnectionError("redis went away")
        await real_publish(channel, event_type, data, key=key)

    w.publisher.publish = flaky  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await w.notification_consumer.handle(like)
    assert len(w.store.state.notifications) == 1  # the row committed...
    assert w.publisher.on(f"notifications:{alice.id}") == []  # ...the push did not
    await w.notification_consumer.handle(like)  # the retry publishes it
    await w.notification_consumer.handle(like)  # a replay pushes nothing twice
    pushes = [p.type for p in w.publisher.on(f"notifications:{alice.id}")]
    assert pushes == ["notification.created", "notifications.unread"]
    assert len(w.store.state.notifications) == 1


async def test_like_notifies_the_author_once_even_when_delivered_twice(w: World) -> None:
    alice, bob, post = await _liked_post(w)
    [like] = w.store.events_of(LikeCreated)
    await w.notification_consumer.handle(like)
    await w.notification_consumer.handle(like)  # at-least-once: the same event again
    await w.notification_consumer.handle(decode_event(encode_event(like)))

    [note] = (await w.notifications.page(alice.id, alice.id, PageRequest())).items
    assert (note.id, note.kind, note.actor_id, note.post_id, note.comment_id) == (
        like.event_id,
        "like",
        bob.id,
        post.id,
        None,
    )
    assert note.created_at == like.at
    channel = f"notifications:{alice.id}"
    pushed = w.publisher.on(channel)
    assert [p.type for p in pushed] == ["notification.created", "notifications.unread"]
    assert w.publisher.published == pushed  # nothing anywhere else
    created = pushed[0].json
    assert created["id"] == str(note.id)
    assert created["kind"] == "like"
    assert created["actor"]["id"] == str(bob.id)
    assert created["post_id"] == str(post.id)
    assert created["read"] is False
    assert pushed[1].json == {"count": 1}


async def test_comment_and_follow_notifications(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    post, _ = await w.posts.create(alice.id, "hello")
    comment, _ = await w.posts.comment(post.id, bob.id, "nice")
    await w.social.follow(bob.id, alice.id)
    await w.relay([w.notification_consumer])
    notes = (await w.notifications.page(alice.id, alice.id, PageRequest())).items
    assert [(n.kind, n.actor_id, n.post_id, n.comment_id) for n in notes] == [
        ("follow", bob.id, None, None),
        ("comment", bob.id, post.id, comment.id),
    ]
    unread = [
        p.json for p in w.publisher.on(f"notifications:{alice.id}") if p.type.endswith("unread")
    ]
    assert unread == [{"count": 1}, {"count": 2}]


async def test_own_actions_never_notify(w: World) -> None:
    alice = await w.user("alice")
    post, _ = await w.posts.create(alice.id, "talking to myself")
    await w.posts.like(post.id, alice.id)
    await w.posts.comment(post.id, alice.id, "indeed")
    await w.relay([w.notification_consumer])
    assert w.store.state.notifications == {}
    assert w.publisher.published == []


async def test_no_notification_across_a_block(w: World) -> None:
    alice, bob, post = await _liked_post(w)
    await w.posts.comment(post.id, bob.id, "hi")
    await w.social.follow(bob.id, alice.id)
    # The block lands before the relay delivers bob's actions.
    await w.social.block(alice.id, bob.id)
    await w.relay([w.notification_consumer])
    assert w.store.state.notifications == {}
    assert w.publisher.published == []


async def test_notifications_read_pushes_the_new_count(w: World) -> None:
    alice, bob, post = await _liked_post(w)
    await w.posts.comment(post.id, bob.id, "hi")
    await w.relay([w.notification_consumer])
    w.publisher.clear()
    await w.notifications.mark_read(alice.id, None)
    await w.relay([w.notification_consumer])
    assert [(p.channel, p.type, p.json) for p in w.publisher.published] == [
        (f"notifications:{alice.id}", "notifications.unread", {"count": 0})
    ]


# --- live routing ---------------------------------------------------------------------------


async def test_post_pushes_skip_the_feeds_of_followers_not_online(w: World) -> None:
    """Only followers online recently get the push on their feed channel (the others
    resume with `recovered: false` and refetch); the profile and public channels always."""
    alice, bob, carol = await w.users("alice", "bob", "carol")
    for fan in (bob, carol):
        await w.social.follow(fan.id, alice.id)
    w.publisher.offline = {f"feed:{carol.id}"}
    expected = sorted([f"feed:{alice.id}", f"feed:{bob.id}", f"user:{alice.id}", "public"])
    post, _ = await w.posts.create(alice.id, "hello")
    w.publisher.clear()
    await w.relay([w.live_consumer])
    assert sorted(w.publisher.channels("post.created")) == expected
    await w.posts.delete(post.id, alice.id)
    await w.relay([w.live_consumer])
    assert sorted(w.publisher.channels("post.deleted")) == expected


async def test_post_created_goes_to_author_followers_user_and_public(w: World) -> None:
    alice, bob, carol, dave, erin = await w.users("alice", "bob", "carol", "dave", "erin")
    for fan in (bob, carol, dave):
        await w.social.follow(fan.id, alice.id)
    # A follow that coexists with a block (written around the service, e.g. a race the
    # service lost): the block still wins at routing time.
    async with w.store.transaction():
        await w.store.relations.block(w.ids.next_id(), alice.id, dave.id, w.clock.now())
    post, _ = await w.posts.create(alice.id, "hello followers")
    w.publisher.clear()
    await w.relay([w.live_consumer])

    assert sorted(w.publisher.channels("post.created")) == sorted(
        [f"feed:{alice.id}", f"feed:{bob.id}", f"feed:{carol.id}", f"user:{alice.id}", "public"]
    )
    assert not any(
        str(erin.id) in c or str(dave.id) in c for c in w.publisher.channels("post.created")
    )
    body = next(p for p in w.publisher.published if p.type == "post.created").json
    assert body["id"] == str(post.id)
    assert body["author"]["username"] == "alice"
    assert body["liked_by_me"] is False  # one rendering for every subscriber
    assert "email" not in body["author"]


async def test_post_deleted_follows_the_same_routes(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    await w.social.follow(bob.id, alice.id)
    post, _ = await w.posts.create(alice.id, "oops")
    await w.relay()
    w.publisher.clear()
    await w.posts.delete(post.id, alice.id)
    await w.relay([w.live_consumer])
    assert sorted(w.publisher.channels("post.deleted")) == sorted(
        [f"feed:{alice.id}", f"feed:{bob.id}", f"user:{alice.id}", "public"]
    )
    assert {p.json["post_id"] for p in w.publisher.published} == {str(post.id)}


async def test_a_post_deleted_before_relay_is_never_pushed_as_created(w: World) -> None:
    alice = await w.user("alice")
    post, _ = await w.posts.create(alice.id, "blink")
    await w.posts.delete(post.id, alice.id)
    await w.relay([w.live_consumer])
    assert w.publisher.channels("post.created") == []
    assert len(w.publisher.channels("post.deleted")) == 3


async def test_likes_and_comments_go_to_the_post_channel(w: World) -> None:
    _, bob, post = await _liked_post(w)
    await w.posts.unlike(post.id, bob.id)
    comment, _ = await w.posts.comment(post.id, bob.id, "still nice")
    w.publisher.clear()
    await w.relay([w.live_consumer])
    on_post = [
        (p.channel, p.type, p.json) for p in w.publisher.published if p.type != "post.created"
    ]
    channel = f"post:{post.id}"
    assert on_post[:2] == [
        (channel, "post.liked", {"post_id": str(post.id), "user_id": str(bob.id), "like_count": 1}),
        (
            channel,
            "post.unliked",
            {"post_id": str(post.id), "user_id": str(bob.id), "like_count": 0},
        ),
    ]
    assert on_post[2][:2] == (channel, "comment.created")
    assert on_post[2][2]["comment_count"] == 1
    assert on_post[2][2]["comment"]["id"] == str(comment.id)
    assert on_post[2][2]["comment"]["author"]["id"] == str(bob.id)


async def test_follow_is_announced_on_the_followed_users_channel(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    await w.social.follow(bob.id, alice.id)
    await w.relay([w.live_consumer])
    [pushed] = w.publisher.published
    assert (pushed.channel, pushed.type) == (f"user:{alice.id}", "user.followed")
    assert pushed.json["user_id"] == str(alice.id)
    assert pushed.json["follower"]["id"] == str(bob.id)


# --- feed fan-out ---------------------------------------------------------------------------


async def test_feed_fan_out_and_retract(w: World) -> None:
    alice, bob, carol = await w.users("alice", "bob", "carol")
    await w.social.follow(bob.id, alice.id)
    post, _ = await w.posts.create(alice.id, "fan me out")
    await w.relay([w.feed_consumer])
    assert w.feed_store.feeds == {alice.id: {post.id}, bob.id: {post.id}}
    await w.relay([w.feed_consumer])  # nothing pending: nothing changes
    [created] = w.store.events_of(PostCreated)
    await w.feed_consumer.handle(created)  # a replay is a set insert
    assert w.feed_store.feeds == {alice.id: {post.id}, bob.id: {post.id}}
    await w.posts.delete(post.id, alice.id)
    await w.relay([w.feed_consumer])
    assert w.feed_store.feeds == {alice.id: set(), bob.id: set()}
    assert carol.id not in w.feed_store.feeds
