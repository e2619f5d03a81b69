"""SocialService: follows and blocks, and what a block hides."""

from __future__ import annotations

import pytest
from domain_world import World

from domain.errors import DomainError, Forbidden, NotFound, ValidationFailed
from domain.events import BlockCreated, FollowCreated, FollowRemoved
from domain.pagination import PageRequest


async def test_follow_is_idempotent_with_one_event(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    first = await w.social.follow(alice.id, bob.id)
    second = await w.social.follow(alice.id, bob.id)
    assert first == second
    assert (first.user_id, first.following, first.followed_by, first.blocking) == (
        bob.id,
        True,
        False,
        False,
    )
    [event] = w.store.events
    assert isinstance(event, FollowCreated)
    assert (event.follower_id, event.followed_id) == (alice.id, bob.id)
    assert event.at == w.clock.now()
    # The event id is the follow edge's id: the list cursor and the notification id.
    assert [e.id for e in await w.store.relations.followers(bob.id, PageRequest())] == [
        event.event_id
    ]
    back = await w.social.relationship(bob.id, alice.id)
    assert (back.following, back.followed_by) == (False, True)


async def test_unfollow_is_idempotent_with_one_event(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    await w.social.follow(alice.id, bob.id)
    first = await w.social.unfollow(alice.id, bob.id)
    second = await w.social.unfollow(alice.id, bob.id)
    assert first == second
    assert not first.following
    assert [type(e) for e in w.store.events] == [FollowCreated, FollowRemoved]


async def test_unfollow_without_follow_writes_nothing(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    await w.social.unfollow(alice.id, bob.id)
    assert w.store.events == []


async def test_self_follow_and_self_block_are_refused(w: World) -> None:
    alice = await w.user("alice")
    for action in (w.social.follow, w.social.unfollow, w.social.block, w.social.unblock):
        with pytest.raises(ValidationFailed):
            await action(alice.id, alice.id)
    assert w.store.state.follows == {}
    assert w.store.state.blocks == {}


async def test_following_an_unknown_user_is_not_found(w: World) -> None:
    alice = await w.user("alice")
    for action in (w.social.follow, w.social.block):
        with pytest.raises(NotFound):
            await action(alice.id, 424242)


async def test_block_removes_follows_both_ways(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    await w.social.follow(alice.id, bob.id)
    await w.social.follow(bob.id, alice.id)
    rel = await w.social.block(alice.id, bob.id)
    assert (rel.following, rel.followed_by, rel.blocking, rel.blocked_by) == (
        False,
        False,
        True,
        False,
    )
    blocked_events = w.store.events[2:]
    assert [type(e).__name__ for e in blocked_events] == [
        "FollowRemoved",
        "FollowRemoved",
        "BlockCreated",
    ]
    assert {(e.follower_id, e.followed_id) for e in w.store.events_of(FollowRemoved)} == {
        (alice.id, bob.id),
        (bob.id, alice.id),
    }
    [block] = w.store.events_of(BlockCreated)
    assert (block.blocker_id, block.blocked_id) == (alice.id, bob.id)
    assert w.store.state.follows == {}
    # Blocking again changes nothing and says nothing.
    await w.social.block(alice.id, bob.id)
    assert len(w.store.events) == 5


async def test_after_a_block_neither_side_can_follow(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    await w.social.block(alice.id, bob.id)
    with pytest.raises(Forbidden):
        await w.social.follow(alice.id, bob.id)  # the blocker
    with pytest.raises(NotFound):
        await w.social.follow(bob.id, alice.id)  # the blocked: alice does not exist for bob
    assert w.store.state.follows == {}
    await w.social.unblock(alice.id, bob.id)
    assert (await w.social.follow(bob.id, alice.id)).following


async def test_a_refused_follow_rolls_back(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    await w.social.block(alice.id, bob.id)
    outbox_before = dict(w.store.state.outbox)
    with pytest.raises(Forbidden):
        await w.social.follow(alice.id, bob.id)
    assert w.store.state.outbox == outbox_before
    assert w.store.rollbacks == 1


async def test_blocked_user_sees_404_for_the_blocker(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    post, _ = await w.posts.create(alice.id, "hello")
    await w.social.block(alice.id, bob.id)

    async def error_of(call: object) -> DomainError:
        with pytest.raises(NotFound) as info:
            await call  # type: ignore[misc]
        return info.value

    missing = await error_of(w.accounts.get(999, bob.id))
    hidden = [
        await error_of(w.accounts.get(alice.id, bob.id)),
        await error_of(w.posts.by_author(alice.id, bob.id, PageRequest())),
        await error_of(w.social.followers(alice.id, bob.id, PageRequest())),
        await error_of(w.social.relationship(bob.id, alice.id)),
    ]
    # Indistinguishable from an account that does not exist.
    assert {(e.code, e.message, e.status) for e in hidden} == {
        (missing.code, missing.message, missing.status)
    }
    for call in (
        w.posts.get(post.id, bob.id),
        w.posts.like(post.id, bob.id),
        w.posts.comment(post.id, bob.id, "hi"),
        w.posts.comments(post.id, bob.id, PageRequest()),
    ):
        assert (await error_of(call)).status == 404
    # The blocker still sees the blocked user's profile but not across the block.
    assert (await w.accounts.get(bob.id, alice.id)).id == bob.id
    assert (await w.posts.by_author(bob.id, alice.id, PageRequest())).items == []
    # Anonymous readers are not affected by other people's blocks.
    assert (await w.posts.get(post.id, None)).id == post.id


async def test_follower_lists_page_by_edge_and_hide_blocked_accounts(w: World) -> None:
    star = await w.user("star")
    fans = await w.users("fan_a", "fan_b", "fan_c", "viewer")
    viewer = fans[-1]
    for fan in fans[:3]:
        w.clock.advance(1)
        await w.social.follow(fan.id, star.id)
    await w.social.block(viewer.id, fans[1].id)
    # Newest follow first; fan_b is hidden from the viewer and the page is still full.
    first = await w.social.followers(star.id, viewer.id, PageRequest(limit=2))
    assert [a.id for a in first.items] == [fans[2].id, fans[0].id]
    assert first.full and first.oldest_cursor is not None
    # The cursors are follow ids, not user ids, and the next page is the (empty) end.
    assert first.oldest_cursor != fans[0].id
    rest = await w.social.followers(
        star.id, viewer.id, PageRequest(limit=2, max_id=first.oldest_cursor)
    )
    assert rest.items == [] and rest.next_max_id is None
    # Everyone else sees all three.
    everyone = await w.social.followers(star.id, None, PageRequest(limit=5))
    assert [a.id for a in everyone.items] == [fans[2].id, fans[1].id, fans[0].id]
    following = await w.social.following(fans[0].id, None, PageRequest())
    assert [a.id for a in following.items] == [star.id]
