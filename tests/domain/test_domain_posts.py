"""PostService: posts, likes and comments, and the events they leave in the outbox."""

from __future__ import annotations

import pytest
from domain_world import World

from domain.errors import Forbidden, NotFound, ValidationFailed
from domain.events import CommentCreated, LikeCreated, LikeRemoved, PostCreated, PostDeleted
from domain.models import Post
from domain.pagination import PageRequest


async def test_create_writes_the_post_and_its_event(w: World) -> None:
    alice = await w.user("alice")
    post, created = await w.posts.create(alice.id, "hello world")
    assert created
    assert (post.author_id, post.content, post.media_ids) == (alice.id, "hello world", ())
    assert (post.like_count, post.comment_count, post.deleted_at) == (0, 0, None)
    assert await w.posts.get(post.id, None) == post
    [event] = w.store.events
    assert event == PostCreated(
        event_id=post.id, at=w.clock.now(), post_id=post.id, author_id=alice.id
    )


@pytest.mark.parametrize("content", ["", "   ", "x" * 501, "a\x00b"])
async def test_invalid_content_writes_nothing(w: World, content: str) -> None:
    alice = await w.user("alice")
    with pytest.raises(ValidationFailed):
        await w.posts.create(alice.id, content)
    assert w.store.state.posts == {}
    assert w.store.events == []


async def test_idempotency_key_returns_the_same_post_and_no_second_event(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    first, created = await w.posts.create(alice.id, "once", idempotency_key="k1")
    w.clock.advance(5)
    again, created_again = await w.posts.create(alice.id, "once", idempotency_key="k1")
    assert (created, created_again) == (True, False)
    assert again == first
    assert len(w.store.events_of(PostCreated)) == 1
    # The key is per author: bob may use the same one.
    bobs, bob_created = await w.posts.create(bob.id, "mine", idempotency_key="k1")
    assert bob_created and bobs.id != first.id
    # Without a key, two identical posts are two posts.
    await w.posts.create(alice.id, "twice")
    await w.posts.create(alice.id, "twice")
    assert len(w.store.events_of(PostCreated)) == 4


async def test_idempotency_race_returns_the_winner(w: World) -> None:
    """The key check and the insert are not atomic: when the insert reports the key taken
    (a concurrent request won), the winner's post comes back and nothing is announced."""
    alice = await w.user("alice")
    winner, _ = await w.posts.create(alice.id, "first", idempotency_key="race")
    calls = 0
    real = w.store.posts.get_by_idempotency_key

    async def miss_once(author_id: int, key: str) -> Post | None:
        nonlocal calls
        calls += 1
        return None if calls == 1 else await real(author_id, key)

    w.store.posts.get_by_idempotency_key = miss_once  # type: ignore[method-assign]
    post, created = await w.posts.create(alice.id, "second", idempotency_key="race")
    assert (post, created) == (winner, False)
    assert len(w.store.events_of(PostCreated)) == 1


async def test_media_must_be_own_and_at_most_four(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    mine = [await w.upload(alice.id) for _ in range(5)]
    bobs = await w.upload(bob.id)
    with pytest.raises(ValidationFailed) as info:
        await w.posts.create(alice.id, "look", media_ids=[mine[0].id, bobs.id])
    assert info.value.code == "invalid_media"
    with pytest.raises(ValidationFailed):
        await w.posts.create(alice.id, "look", media_ids=[987654321])
    with pytest.raises(ValidationFailed) as too_many:
        await w.posts.create(alice.id, "look", media_ids=[m.id for m in mine])
    assert too_many.value.details == {"field": "media_ids"}
    assert w.store.state.posts == {}
    # Duplicates collapse (and then count once); order is kept.
    ids = [mine[2].id, mine[0].id, mine[2].id, mine[1].id, mine[3].id]
    post, _ = await w.posts.create(alice.id, "four", media_ids=ids)
    assert post.media_ids == (mine[2].id, mine[0].id, mine[1].id, mine[3].id)
    view = await w.presenter.post(post, None)
    assert [m.id for m in view.media] == [str(i) for i in post.media_ids]
    assert view.media[0].url == f"/media/{mine[2].id}"  # the URL scheme the world supplies


async def test_delete_is_author_only_then_not_found(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    post, _ = await w.posts.create(alice.id, "soon gone")
    with pytest.raises(Forbidden):
        await w.posts.delete(post.id, bob.id)
    assert (await w.posts.get(post.id, None)).deleted_at is None
    await w.posts.delete(post.id, alice.id)
    deleted = w.store.events_of(PostDeleted)
    assert [(e.post_id, e.author_id) for e in deleted] == [(post.id, alice.id)]
    for call in (
        w.posts.get(post.id, alice.id),
        w.posts.delete(post.id, alice.id),
        w.posts.like(post.id, bob.id),
        w.posts.comment(post.id, bob.id, "late"),
    ):
        with pytest.raises(NotFound):
            await call
    assert (await w.posts.by_author(alice.id, None, PageRequest())).items == []
    assert len(w.store.events_of(PostDeleted)) == 1
    with pytest.raises(NotFound):
        await w.posts.delete(123, alice.id)


async def test_like_and_unlike_are_idempotent_with_exact_counts(w: World) -> None:
    alice, bob, carol = await w.users("alice", "bob", "carol")
    post, _ = await w.posts.create(alice.id, "like me")
    assert (await w.posts.like(post.id, bob.id)).like_count == 1
    assert (await w.posts.like(post.id, bob.id)).like_count == 1
    assert (await w.posts.like(post.id, carol.id)).like_count == 2
    likes = w.store.events_of(LikeCreated)
    assert [(e.user_id, e.like_count, e.post_author_id) for e in likes] == [
        (bob.id, 1, alice.id),
        (carol.id, 2, alice.id),
    ]
    view = (await w.presenter.posts([post], bob.id))[0]
    assert view.liked_by_me
    assert not (await w.presenter.posts([post], alice.id))[0].liked_by_me
    likers = await w.posts.likers(post.id, None, PageRequest())
    assert [a.id for a in likers.items] == [carol.id, bob.id]

    assert (await w.posts.unlike(post.id, bob.id)).like_count == 1
    assert (await w.posts.unlike(post.id, bob.id)).like_count == 1
    assert (await w.posts.unlike(post.id, alice.id)).like_count == 1  # never liked it
    removed = w.store.events_of(LikeRemoved)
    assert [(e.user_id, e.like_count) for e in removed] == [(bob.id, 1)]
    assert not (await w.presenter.posts([post], bob.id))[0].liked_by_me


async def test_comment_increments_the_count(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    post, _ = await w.posts.create(alice.id, "discuss")
    first, count1 = await w.posts.comment(post.id, bob.id, "first!")
    second, count2 = await w.posts.comment(post.id, alice.id, "thanks")
    assert (count1, count2) == (1, 2)
    assert (await w.posts.get(post.id, None)).comment_count == 2
    events = w.store.events_of(CommentCreated)
    assert [(e.comment_id, e.author_id, e.comment_count) for e in events] == [
        (first.id, bob.id, 1),
        (second.id, alice.id, 2),
    ]
    listed = (await w.posts.comments(post.id, None, PageRequest())).items
    assert [c.id for c in listed] == [second.id, first.id]
    with pytest.raises(ValidationFailed):
        await w.posts.comment(post.id, bob.id, "  ")
    assert (await w.posts.get(post.id, None)).comment_count == 2


async def test_comments_hide_blocked_authors(w: World) -> None:
    alice, bob, carol = await w.users("alice", "bob", "carol")
    post, _ = await w.posts.create(alice.id, "discuss")
    await w.posts.comment(post.id, bob.id, "from bob")
    carols, _ = await w.posts.comment(post.id, carol.id, "from carol")
    await w.social.block(carol.id, bob.id)
    seen_by_carol = (await w.posts.comments(post.id, carol.id, PageRequest())).items
    assert [c.id for c in seen_by_carol] == [carols.id]
    seen_by_alice = (await w.posts.comments(post.id, alice.id, PageRequest())).items
    assert len(seen_by_alice) == 2


async def test_by_author_pages_newest_first(w: World) -> None:
    alice = await w.user("alice")
    posts = []
    for i in range(5):
        w.clock.advance(1)
        posts.append((await w.posts.create(alice.id, f"post {i}"))[0])
    page1 = (await w.posts.by_author(alice.id, None, PageRequest(limit=3))).items
    page2 = (
        await w.posts.by_author(alice.id, None, PageRequest(limit=3, max_id=page1[-1].id))
    ).items
    assert [p.content for p in page1 + page2] == [f"post {i}" for i in range(4, -1, -1)]


async def test_a_failed_write_leaves_no_event_behind(w: World) -> None:
    """The row and its outbox entry commit together or not at all."""
    alice, bob = await w.users("alice", "bob")
    post, _ = await w.posts.create(alice.id, "hello")
    before = len(w.store.events)

    async def broken(post_id: int, delta: int) -> int:
        raise RuntimeError("database went away")

    w.store.posts.add_to_like_count = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await w.posts.like(post.id, bob.id)
    assert w.store.state.likes == {}
    assert len(w.store.events) == before
