"""Posts, likes, comments, notifications, media, outbox and transactions (both engines)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from storage_helpers import at, make_account, make_post

from domain.errors import NotFound
from domain.events import PostCreated, decode_event, encode_event
from domain.models import Comment, DeadLetter, Media, Notification
from domain.pagination import PageRequest, apply_page
from storage.factory import Storage


async def test_post_round_trip_and_soft_delete(storage: Storage, ids: Iterator[int]) -> None:
    posts = storage.store.posts
    post = make_post(next(ids), 1, "héllo wörld", media_ids=(5, 1 << 50))
    assert await posts.add(post) is True
    assert await posts.get(post.id) == post

    assert await posts.soft_delete(post.id, at(9)) is True
    assert await posts.soft_delete(post.id, at(10)) is False
    deleted = await posts.get(post.id)
    assert deleted is not None and deleted.deleted_at == at(9)
    assert await posts.get_many([post.id]) == {}
    assert await posts.by_author(1, PageRequest()) == []


async def test_seen_by_reads_posts_with_their_authors_and_the_viewers_likes(
    storage: Storage, ids: Iterator[int]
) -> None:
    store = storage.store
    alice, bob = make_account(next(ids), "alice"), make_account(next(ids), "bob")
    await store.users.add(alice)
    await store.users.add(bob)
    liked = make_post(next(ids), alice.id, "liked by bob", media_ids=(7,))
    plain = make_post(next(ids), bob.id, "not liked")
    gone = make_post(next(ids), alice.id, "deleted")
    orphan = make_post(next(ids), next(ids), "author row missing")
    for post in (liked, plain, gone, orphan):
        await store.posts.add(post)
    await store.posts.soft_delete(gone.id, at(1))
    await store.likes.add(next(ids), liked.id, bob.id, at())

    wanted = [liked.id, plain.id, gone.id, orphan.id, next(ids)]
    seen = await store.posts.seen_by(wanted, bob.id)
    assert set(seen) == {liked.id, plain.id}
    assert (seen[liked.id].post, seen[liked.id].author, seen[liked.id].liked) == (
        liked,
        alice,
        True,
    )
    assert (seen[plain.id].post, seen[plain.id].author, seen[plain.id].liked) == (plain, bob, False)
    # Without a viewer nothing is liked; with another viewer only that viewer's likes count.
    assert [s.liked for s in (await store.posts.seen_by(wanted, None)).values()] == [False] * 2
    assert not (await store.posts.seen_by([liked.id], alice.id))[liked.id].liked
    assert await store.posts.seen_by([], bob.id) == {}


async def test_idempotency_key_is_unique_per_author(storage: Storage, ids: Iterator[int]) -> None:
    posts = storage.store.posts
    first = make_post(next(ids), 1, "once", idempotency_key="k1")
    assert await posts.add(first) is True
    assert await posts.add(make_post(next(ids), 1, "twice", idempotency_key="k1")) is False
    assert await posts.add(make_post(next(ids), 2, "other author", idempotency_key="k1"))
    # Posts without a key never collide.
    assert await posts.add(make_post(next(ids), 1, "a"))
    assert await posts.add(make_post(next(ids), 1, "b"))

    assert await posts.get_by_idempotency_key(1, "k1") == first
    assert await posts.get_by_idempotency_key(1, "nope") is None
    assert len(await posts.by_author(1, PageRequest())) == 3


PAGES = [
    PageRequest(),
    PageRequest(limit=3),
    PageRequest(limit=3, max_id=7),
    PageRequest(limit=3, since_id=4),
    PageRequest(limit=3, min_id=4),
    PageRequest(limit=2, min_id=4, max_id=9),
    PageRequest(limit=5, since_id=2, max_id=6),
    PageRequest(limit=3, max_id=1),
    PageRequest(limit=3, min_id=10),
]


async def test_paging_follows_the_reference_semantics(storage: Storage) -> None:
    posts = storage.store.posts
    for post_id in range(1, 11):
        await posts.add(make_post(post_id, 1, f"post {post_id}"))
    newest_first = list(range(10, 0, -1))
    for page in PAGES:
        got = [post.id for post in await posts.by_author(1, page)]
        assert got == apply_page(newest_first, page), page


async def test_concurrent_likes_give_an_exact_count(storage: Storage, ids: Iterator[int]) -> None:
    store = storage.store
    post = make_post(next(ids), 1)
    await store.posts.add(post)
    like_ids = {user: next(ids) for user in range(100, 120)}

    async def like(user_id: int) -> bool:
        # The domain's like: insert the like and bump the counter in one transaction.
        async with store.transaction():
            if await store.likes.add(like_ids[user_id], post.id, user_id, at()):
                await store.posts.add_to_like_count(post.id, 1)
                return True
            return False

    results = await asyncio.gather(*(like(u) for u in like_ids), *(like(u) for u in like_ids))
    assert sum(results) == 20
    stored = await store.posts.get(post.id)
    assert stored is not None and stored.like_count == 20

    assert await store.likes.liked(100, [post.id, 999]) == {post.id}
    likers = await store.likes.likers(post.id, PageRequest(limit=40))
    assert [edge.user_id for edge in likers] == list(range(119, 99, -1))

    assert await store.likes.remove(post.id, 100) is True
    assert await store.likes.remove(post.id, 100) is False
    assert await store.posts.add_to_like_count(post.id, -1) == 19
    assert await store.likes.liked(100, [post.id]) == set()


async def test_counter_of_a_missing_post_is_not_found(storage: Storage) -> None:
    with pytest.raises(NotFound):
        await storage.store.posts.add_to_like_count(12345, 1)


async def test_comments(storage: Storage, ids: Iterator[int]) -> None:
    store = storage.store
    post = make_post(next(ids), 1)
    await store.posts.add(post)
    comments = [
        Comment(id=next(ids), post_id=post.id, author_id=2, content=f"c{n}", created_at=at(n))
        for n in range(3)
    ]
    for comment in comments:
        await store.comments.add(comment)
    assert await store.posts.add_to_comment_count(post.id, 3) == 3
    assert await store.comments.get(comments[1].id) == comments[1]
    assert await store.comments.get(next(ids)) is None
    page = await store.comments.by_post(post.id, PageRequest(limit=2))
    assert page == [comments[2], comments[1]]


def _notification(notification_id: int, user_id: int, kind: str = "like") -> Notification:
    return Notification(
        id=notification_id,
        user_id=user_id,
        kind=kind,  # type: ignore[arg-type]
        actor_id=2,
        post_id=10 if kind != "follow" else None,
        comment_id=None,
        created_at=at(notification_id),
    )


async def test_notifications_idempotent_unread_and_mark_read(storage: Storage) -> None:
    notes = storage.store.notifications
    for n in range(1, 6):
        assert await notes.add(_notification(n, 1, "follow" if n == 3 else "like")) is True
    assert await notes.add(_notification(2, 1)) is False  # a replayed event
    await notes.add(_notification(6, 99))

    assert await notes.unread_count(1) == 5
    assert [n.id for n in await notes.page(1, PageRequest(limit=2, max_id=5))] == [4, 3]
    assert await notes.mark_read(1, 3, at(100)) == 3
    assert await notes.unread_count(1) == 2
    assert await notes.mark_read(1, 3, at(101)) == 0
    assert await notes.mark_read(1, None, at(102)) == 2
    assert await notes.unread_count(1) == 0
    assert await notes.unread_count(99) == 1

    page = await notes.page(1, PageRequest())
    assert [(n.id, n.read_at) for n in page] == [
        (5, at(102)),
        (4, at(102)),
        (3, at(100)),
        (2, at(100)),
        (1, at(100)),
    ]
    assert page[2].kind == "follow" and page[2].post_id is None


async def test_media(storage: Storage, ids: Iterator[int]) -> None:
    media = storage.store.media
    item = Media(
        id=next(ids),
        owner_id=1,
        content_type="image/png",
        size=3 << 30,
        width=640,
        height=480,
        sha256="ab" * 32,
        created_at=at(),
    )
    await media.add(item)
    assert await media.get(item.id) == item
    assert await media.get(next(ids)) is None
    assert await media.get_many([item.id, 1]) == {item.id: item}


async def test_outbox_keeps_commit_order_and_wakes_after_commit(storage: Storage) -> None:
    store, reader = storage.store, storage.outbox_reader
    woken: list[str] = []
    store.add_outbox_listener(lambda: woken.append("wake"))
    events = [PostCreated(event_id=n, at=at(n), post_id=100 + n, author_id=1) for n in (3, 1, 2)]

    async with store.transaction():
        await store.outbox.append(events)
        await store.outbox.append(events[:1])  # the same event again: one row
        assert woken == []  # not before the commit
    assert woken == ["wake", "wake"]
    # A later transaction's events come after, whatever their ids (minted earlier, or on
    # a node whose clock runs behind).
    async with store.transaction():
        await store.outbox.append([PostCreated(event_id=0, at=at(9), post_id=9, author_id=1)])

    pending = await reader.pending("e1", 10)
    assert [entry.id for entry in pending] == [3, 1, 2, 0]
    assert decode_event(pending[1].event) == events[1]
    assert [e.id for e in await reader.pending("e1", 2)] == [3, 1]


async def test_outbox_entries_stay_open_until_completed(storage: Storage) -> None:
    store, reader = storage.store, storage.outbox_reader
    async with store.transaction():
        await store.outbox.append(
            [PostCreated(event_id=n, at=at(n), post_id=100 + n, author_id=1) for n in (1, 2, 3)]
        )
    await reader.mark_relayed([1, 2], "e1", at(10))
    assert [e.id for e in await reader.pending("e1", 10)] == [3]
    # The log lost its data (a new epoch): everything open is pending again.
    assert [e.id for e in await reader.pending("e2", 10)] == [1, 2, 3]
    await reader.mark_relayed([1, 2, 3], "e2", at(11))
    assert await reader.pending("e2", 10) == []

    await reader.complete([1], at(20))
    await reader.complete([1], at(25))  # twice: the first completion stands
    assert await reader.open_count() == 2
    # A later epoch re-sends only what is still open.
    assert [e.id for e in await reader.pending("e3", 10)] == [2, 3]

    # Completed entries are purged after the window, open ones never.
    assert await reader.purge_completed(at(19)) == 0
    assert await reader.purge_completed(at(30)) == 1
    assert [e.id for e in await reader.pending("e3", 10)] == [2, 3]


async def test_dead_letters_are_kept_listed_and_replayed(storage: Storage) -> None:
    store, reader = storage.store, storage.outbox_reader
    event = PostCreated(event_id=7, at=at(1), post_id=70, author_id=1)
    async with store.transaction():
        await store.outbox.append([event])
    await reader.mark_relayed([7], "e1", at(1))
    letter = DeadLetter(
        outbox_id=7,
        kind="live",
        attempts=5,
        error="RuntimeError: boom",
        failed_at=at(3),
        event=encode_event(event),
    )
    await reader.dead_letter(letter)
    await reader.dead_letter(letter)  # recorded once
    await reader.complete([7], at(4))  # every group acknowledged it: the rest flow on
    assert await reader.open_count() == 0
    assert await reader.dead_letters() == [letter]
    assert await reader.dead_letters("feed") == []
    # A dead letter keeps its entry from being purged.
    assert await reader.purge_completed(at(100)) == 0

    assert await reader.replay(7, "live")
    assert not await reader.replay(7, "live")  # nothing left to replay
    assert await reader.dead_letters() == []
    assert [e.id for e in await reader.pending("e1", 10)] == [7]  # open and pending again


async def test_rolled_back_transaction_persists_nothing_and_wakes_nobody(
    storage: Storage, ids: Iterator[int]
) -> None:
    store = storage.store
    woken: list[int] = []
    store.add_outbox_listener(lambda: woken.append(1))
    post = make_post(next(ids), 1)

    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.posts.add(post)
            await store.outbox.append(
                [PostCreated(event_id=1, at=at(), post_id=post.id, author_id=1)]
            )
            async with store.transaction():  # nested: part of the same transaction
                await store.posts.add_to_like_count(post.id, 1)
            # Visible inside its own transaction...
            assert await store.posts.get(post.id) is not None
            raise RuntimeError("boom")

    # ...and gone after the rollback, on every connection.
    assert await store.posts.get(post.id) is None
    assert await storage.outbox_reader.pending("e1", 10) == []
    assert woken == []


async def test_uncommitted_writes_are_invisible_to_other_connections(
    storage: Storage, ids: Iterator[int]
) -> None:
    store = storage.store
    post = make_post(next(ids), 1)
    inside = asyncio.Event()
    release = asyncio.Event()

    async def writer() -> None:
        async with store.transaction():
            await store.posts.add(post)
            inside.set()
            await release.wait()

    task = asyncio.create_task(writer())
    await inside.wait()
    # Another task (its own context, so not in the transaction) reads committed data only.
    assert await asyncio.create_task(store.posts.get(post.id)) is None
    release.set()
    await task
    assert await store.posts.get(post.id) == post


async def test_after_commit_runs_after_commit_or_at_once(storage: Storage) -> None:
    store = storage.store
    calls: list[str] = []
    store.after_commit(lambda: calls.append("now"))
    async with store.transaction():
        store.after_commit(lambda: calls.append("later"))
        assert calls == ["now"]
    assert calls == ["now", "later"]
