"""The fakes keep the promises of the ports (otherwise every other test here proves
nothing), and the presenter batches its look-ups."""

from __future__ import annotations

import pytest
from domain_world import World
from fakes import FakeStore

from domain.errors import Conflict
from domain.events import PostCreated
from domain.models import RefreshToken
from domain.pagination import PageRequest


async def test_transaction_rolls_back_on_exception(w: World) -> None:
    alice = await w.user("alice")
    with pytest.raises(RuntimeError):
        async with w.store.transaction():
            await w.store.users.bump_token_version(alice.id)
            await w.store.outbox.append(
                [PostCreated(event_id=1, at=w.clock.now(), post_id=1, author_id=alice.id)]
            )
            raise RuntimeError("boom")
    assert (await w.store.users.get(alice.id)) == alice
    assert w.store.events == []
    assert w.store.rollbacks == 1


async def test_nested_transaction_is_a_savepoint(w: World) -> None:
    alice = await w.user("alice")
    async with w.store.transaction():
        await w.store.users.bump_token_version(alice.id)
        with pytest.raises(RuntimeError):
            async with w.store.transaction():
                await w.store.users.bump_token_version(alice.id)
                raise RuntimeError("inner")
    account = await w.store.users.get(alice.id)
    assert account is not None
    assert account.token_version == 1


async def test_writes_outside_a_transaction_are_caught() -> None:
    store = FakeStore()
    with pytest.raises(AssertionError, match="outside a transaction"):
        await store.outbox.append([])


async def test_usernames_and_emails_are_unique_case_insensitively(w: World) -> None:
    await w.accounts.register("alice", "Alice@Example.com", "correct horse")
    with pytest.raises(Conflict) as info:
        await w.accounts.register("bob", "alice@example.com", "correct horse")
    assert info.value.code == "email_taken"
    assert await w.store.users.find_by_login("ALICE@EXAMPLE.COM") is not None
    assert await w.store.users.find_by_login("Alice") is not None
    assert await w.store.users.find_by_login("alice@example") is None


async def test_refresh_token_is_spent_once(w: World) -> None:
    now = w.clock.now()
    token = RefreshToken(token_hash="t", user_id=1, family_id="f", created_at=now, expires_at=now)
    async with w.store.transaction():
        await w.store.refresh_tokens.add(token)
        assert await w.store.refresh_tokens.mark_rotated("t", now)
        assert not await w.store.refresh_tokens.mark_rotated("t", now)
        assert not await w.store.refresh_tokens.mark_rotated("unknown", now)


async def test_outbox_relay_side(w: World) -> None:
    alice = await w.user("alice")
    post, _ = await w.posts.create(alice.id, "x")
    [entry] = await w.outbox_reader.pending("e", 10)
    assert entry.id == post.id  # the event's own id
    assert await w.relay() == 1
    assert await w.relay() == 0
    w.clock.advance(10)
    assert await w.outbox_reader.purge_completed(w.clock.now()) == 1


async def test_presenter_batches_one_query_per_kind(w: World) -> None:
    users = await w.users("alice", "bob", "carol")
    posts = []
    for author in users:
        media = await w.upload(author.id)
        posts.append((await w.posts.create(author.id, "hi", media_ids=[media.id]))[0])
        posts.append((await w.posts.create(author.id, "again"))[0])
    w.store.calls.clear()
    views = await w.presenter.posts(posts, users[0].id)
    assert len(views) == 6
    assert w.store.calls == {
        "FakeUsers.get_many": 1,
        "FakeMedia.get_many": 1,
        "FakeLikes.liked": 1,
    }


async def test_home_feed_reads_once_when_nothing_is_hidden(w: World) -> None:
    alice = await w.user("alice")
    for i in range(5):
        await w.posts.create(alice.id, f"p{i}")
    await w.relay()
    w.feed_store.reads = 0
    assert len((await w.feed.home(alice.id, PageRequest(limit=3))).items) == 3
    assert w.feed_store.reads == 1
