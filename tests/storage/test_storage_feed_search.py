"""The SQL home feed and search (both engines)."""

from __future__ import annotations

from collections.abc import Iterator

from storage_helpers import at, make_account, make_post

from domain.pagination import PageRequest, apply_page
from storage.factory import Storage


async def test_home_feed_is_own_and_followees_posts_minus_blocked_and_deleted(
    storage: Storage, ids: Iterator[int]
) -> None:
    store, feed = storage.store, storage.feed
    me, friend, stranger, blocked, blocker = 1, 2, 3, 4, 5
    for followed in (friend, blocked, blocker):
        await store.relations.follow(next(ids), me, followed, at())
    await store.relations.block(next(ids), me, blocked, at())
    await store.relations.block(next(ids), blocker, me, at())

    expected: list[int] = []
    for author in (me, friend, stranger, blocked, blocker, friend, me):
        post = make_post(next(ids), author)
        await store.posts.add(post)
        if author in (me, friend):
            expected.insert(0, post.id)
    gone = make_post(next(ids), friend)
    await store.posts.add(gone)
    await store.posts.soft_delete(gone.id, at(1))

    assert await feed.page(me, PageRequest()) == expected
    for page in (
        PageRequest(limit=2),
        PageRequest(limit=2, max_id=expected[1]),
        PageRequest(limit=2, since_id=expected[-1]),
        PageRequest(limit=2, min_id=expected[-1]),
    ):
        assert await feed.page(me, page) == apply_page(expected, page), page


async def test_stranger_feed_holds_only_their_own_posts(
    storage: Storage, ids: Iterator[int]
) -> None:
    store = storage.store
    mine = make_post(next(ids), 7)
    await store.posts.add(mine)
    await store.posts.add(make_post(next(ids), 8))
    assert await storage.feed.page(7, PageRequest()) == [mine.id]
    assert await storage.feed.page(9, PageRequest()) == []


async def test_search_posts_by_all_words_as_prefixes(storage: Storage, ids: Iterator[int]) -> None:
    store, search = storage.store, storage.search
    contents = [
        "Alice and Bob went hiking",
        "bob likes coffee",
        "Hiking with ALICE again",
        "nothing to see",
        '100% off_road (really) "quoted" stuff',
    ]
    posts = [make_post(next(ids), 1, text) for text in contents]
    for post in posts:
        await store.posts.add(post)
    p = [post.id for post in posts]

    assert await search.posts("alice", PageRequest()) == [p[2], p[0]]
    assert await search.posts("ali hik", PageRequest()) == [p[2], p[0]]
    assert await search.posts("bob", PageRequest()) == [p[1], p[0]]
    assert await search.posts("BOB coffee", PageRequest()) == [p[1]]
    assert await search.posts("alice coffee", PageRequest()) == []
    assert await search.posts("alice", PageRequest(max_id=p[2])) == [p[0]]
    assert await search.posts("alice", PageRequest(limit=1)) == [p[2]]
    # Query syntax of either engine is just text: no errors, no operators.
    for hostile in ('"', "bob OR coffee", "a* & !b | c:*", "NEAR(bob coffee)", "(", "'"):
        await search.posts(hostile, PageRequest())
    assert await search.posts("bob OR coffee", PageRequest()) == []
    assert await search.posts("100", PageRequest()) == [p[4]]
    assert await search.posts("road quoted", PageRequest()) == [p[4]]
    assert await search.posts("%", PageRequest()) == []
    assert await search.posts("", PageRequest()) == []

    await store.posts.soft_delete(p[0], at(1))
    assert await search.posts("alice", PageRequest()) == [p[2]]


async def test_search_users_by_username_or_display_name(
    storage: Storage, ids: Iterator[int]
) -> None:
    users, search = storage.store.users, storage.search
    accounts = [
        make_account(next(ids), "Alice_Smith", display_name="Alice"),
        make_account(next(ids), "bob", display_name="Bobby Tables"),
        make_account(next(ids), "carol", display_name="100% Carol"),
        make_account(next(ids), "dave", display_name="back\\slash"),
        make_account(next(ids), "aliceXsmith", display_name="Other"),
    ]
    for account in accounts:
        await users.add(account)
    a = [account.id for account in accounts]

    assert await search.users("ALICE", PageRequest()) == [a[4], a[0]]
    assert await search.users("tables", PageRequest()) == [a[1]]
    assert await search.users("bob", PageRequest()) == [a[1]]
    # LIKE wildcards and the escape character match only themselves.
    assert await search.users("alice_", PageRequest()) == [a[0]]
    assert await search.users("%", PageRequest()) == [a[2]]
    assert await search.users("_", PageRequest()) == [a[0]]
    assert await search.users("\\", PageRequest()) == [a[3]]
    assert await search.users("k\\s", PageRequest()) == [a[3]]
    assert await search.users("zzz", PageRequest()) == []
    assert await search.users("alice", PageRequest(max_id=a[4])) == [a[0]]
