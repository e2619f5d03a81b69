"""Reads across resources: home feed, notifications, search; and media uploads."""

from __future__ import annotations

import hashlib

import pytest
from domain_world import World

from domain.errors import Forbidden, NotFound, UnsupportedMedia, ValidationFailed
from domain.events import NotificationsRead
from domain.models import Notification
from domain.pagination import PageRequest

# --- home feed ------------------------------------------------------------------------------


async def test_home_feed_shows_followees_and_self_newest_first(w: World) -> None:
    alice, bob, carol = await w.users("alice", "bob", "carol")
    await w.social.follow(bob.id, alice.id)
    contents = []
    for author, text in ((alice, "a1"), (bob, "b1"), (carol, "c1"), (alice, "a2")):
        w.clock.advance(1)
        await w.posts.create(author.id, text)
        contents.append(text)
    await w.relay()
    home = (await w.feed.home(bob.id, PageRequest())).items
    assert [p.content for p in home] == ["a2", "b1", "a1"]  # carol is not followed


async def test_home_feed_filters_deleted_posts_and_blocked_authors(w: World) -> None:
    alice, bob, carol = await w.users("alice", "bob", "carol")
    await w.social.follow(bob.id, alice.id)
    await w.social.follow(bob.id, carol.id)
    keep, _ = await w.posts.create(alice.id, "keep")
    gone, _ = await w.posts.create(alice.id, "gone")
    await w.posts.create(carol.id, "from carol")
    await w.relay()
    # The stored feed still holds ids the reader must filter: a deletion not yet relayed
    # (so not yet retracted) and a block that came after the fan-out.
    await w.posts.delete(gone.id, alice.id)
    await w.social.block(carol.id, bob.id)
    assert len(w.feed_store.feeds[bob.id]) == 3
    home = (await w.feed.home(bob.id, PageRequest())).items
    assert [p.id for p in home] == [keep.id]


async def test_hidden_entries_do_not_end_the_feed_early(w: World) -> None:
    """A page whose every stored entry is hidden must not come back empty while older
    visible posts exist: clients read an empty page as the end of the feed."""
    alice, bob, carol = await w.users("alice", "bob", "carol")
    await w.social.follow(bob.id, alice.id)
    await w.social.follow(bob.id, carol.id)
    older = []
    for i in range(3):
        w.clock.advance(1)
        older.append((await w.posts.create(alice.id, f"alice {i}"))[0])
    for i in range(6):
        w.clock.advance(1)
        await w.posts.create(carol.id, f"carol {i}")
    await w.relay()
    await w.social.block(bob.id, carol.id)  # carol's six stay in bob's stored feed

    seen = []
    page = PageRequest(limit=2)
    while items := (await w.feed.home(bob.id, page)).items:
        assert (
            len(items) == 2
            or not (await w.feed.home(bob.id, PageRequest(limit=2, max_id=items[-1].id))).items
        )
        seen.extend(items)
        page = PageRequest(limit=2, max_id=items[-1].id)
    assert [p.id for p in seen] == [p.id for p in reversed(older)]

    # since_id / min_id read on the same way.
    newest = (await w.feed.home(bob.id, PageRequest(limit=2, since_id=older[0].id))).items
    assert [p.id for p in newest] == [older[2].id, older[1].id]
    forward = (await w.feed.home(bob.id, PageRequest(limit=1, min_id=older[0].id))).items
    assert [p.id for p in forward] == [older[1].id]


# --- notifications --------------------------------------------------------------------------


async def _notify(w: World, user_id: int, actor_id: int, n: int) -> list[Notification]:
    made = []
    async with w.store.transaction():
        for _ in range(n):
            w.clock.advance(1)
            note = Notification(
                id=w.ids.next_id(),
                user_id=user_id,
                kind="follow",
                actor_id=actor_id,
                post_id=None,
                comment_id=None,
                created_at=w.clock.now(),
            )
            await w.store.notifications.add(note)
            made.append(note)
    return made


async def test_notifications_are_for_their_owner_only(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    made = await _notify(w, alice.id, bob.id, 3)
    page = (await w.notifications.page(alice.id, alice.id, PageRequest(limit=2))).items
    assert [n.id for n in page] == [made[2].id, made[1].id]
    with pytest.raises(Forbidden):
        await w.notifications.page(alice.id, bob.id, PageRequest())
    assert (await w.notifications.page(bob.id, bob.id, PageRequest())).items == []


async def test_mark_read_up_to_and_event_only_on_change(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    made = await _notify(w, alice.id, bob.id, 4)
    await _notify(w, bob.id, alice.id, 1)
    assert await w.notifications.unread_count(alice.id) == 4

    assert await w.notifications.mark_read(alice.id, made[1].id) == 2
    page = (await w.notifications.page(alice.id, alice.id, PageRequest())).items
    assert [n.read_at is not None for n in page] == [False, False, True, True]
    assert [e.user_id for e in w.store.events_of(NotificationsRead)] == [alice.id]

    assert await w.notifications.mark_read(alice.id, made[1].id) == 2  # nothing new
    assert len(w.store.events_of(NotificationsRead)) == 1

    assert await w.notifications.mark_read(alice.id, None) == 0
    assert len(w.store.events_of(NotificationsRead)) == 2
    assert await w.notifications.mark_read(alice.id, None) == 0
    assert len(w.store.events_of(NotificationsRead)) == 2
    assert await w.notifications.unread_count(bob.id) == 1  # other users untouched


# --- search ---------------------------------------------------------------------------------


@pytest.mark.parametrize("q", ["", "   ", "x" * 101])
async def test_search_refuses_blank_and_oversize_queries(w: World, q: str) -> None:
    for search in (w.search.users, w.search.posts):
        with pytest.raises(ValidationFailed) as info:
            await search(q, None, PageRequest())
        assert info.value.details == {"field": "q"}
    assert w.search_index.queries == []  # refused before reaching the index


async def test_search_normalises_the_query_and_hides_blocked(w: World) -> None:
    alice, bob, carol = await w.users("alice", "bob", "carol")
    await w.posts.create(alice.id, "Hello brave new world")
    await w.posts.create(carol.id, "hello world from carol")
    gone, _ = await w.posts.create(alice.id, "hello world, deleted")
    await w.posts.delete(gone.id, alice.id)
    await w.posts.create(alice.id, "world only")
    await w.social.block(carol.id, bob.id)

    found = (await w.search.posts("  hello \n WORLD ", bob.id, PageRequest())).items
    assert [p.content for p in found] == ["Hello brave new world"]
    assert w.search_index.queries[-1] == ("posts", "hello WORLD")
    anonymous = (await w.search.posts("hello world", None, PageRequest())).items
    assert len(anonymous) == 2

    users = (await w.search.users("o", bob.id, PageRequest())).items  # bob, carol
    assert [u.username for u in users] == ["bob"]


# --- media ----------------------------------------------------------------------------------


async def test_upload_stores_processed_bytes_content_addressed(w: World) -> None:
    alice = await w.user("alice")
    media = await w.media.upload(alice.id, b"IMG640x480;pixels")
    assert (media.owner_id, media.width, media.height, media.size) == (alice.id, 640, 480, 6)
    assert media.sha256 == hashlib.sha256(b"pixels").hexdigest()
    assert await w.media.read(await w.media.get(media.id)) == b"pixels"
    with pytest.raises(UnsupportedMedia):
        await w.media.upload(alice.id, b"%PDF-1.7")
    assert len(w.store.state.media) == 1
    with pytest.raises(NotFound):
        await w.media.get(1)
