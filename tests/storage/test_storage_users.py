"""UserRepository, RelationRepository and RefreshTokenRepository contract (both engines)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from storage_helpers import at, make_account

from domain.errors import Conflict
from domain.models import ProfileChanges, RefreshToken
from domain.pagination import PageRequest
from storage.factory import Storage


async def test_add_get_and_find_by_login_case_insensitively(
    storage: Storage, ids: Iterator[int]
) -> None:
    users = storage.store.users
    alice = make_account(next(ids), "Alice", "Alice@Example.com")
    await users.add(alice)

    assert await users.get(alice.id) == alice
    assert await users.get(next(ids)) is None
    assert await users.find_by_login("aLiCe") == alice
    assert await users.find_by_login("ALICE@example.COM") == alice
    assert await users.find_by_login("bob") is None


async def test_taken_username_and_email_are_conflicts_whatever_the_case(
    storage: Storage, ids: Iterator[int]
) -> None:
    users = storage.store.users
    await users.add(make_account(next(ids), "Alice", "alice@example.com"))

    with pytest.raises(Conflict) as taken_name:
        await users.add(make_account(next(ids), "ALICE", "other@example.com"))
    assert taken_name.value.code == "username_taken"

    with pytest.raises(Conflict) as taken_email:
        await users.add(make_account(next(ids), "alice2", "ALICE@EXAMPLE.COM"))
    assert taken_email.value.code == "email_taken"


async def test_a_conflict_inside_a_transaction_leaves_it_usable(
    storage: Storage, ids: Iterator[int]
) -> None:
    # ON CONFLICT DO NOTHING instead of a caught error: PostgreSQL would otherwise abort
    # the whole transaction.
    store = storage.store
    await store.users.add(make_account(next(ids), "alice"))
    bob = make_account(next(ids), "bob")
    async with store.transaction():
        with pytest.raises(Conflict):
            await store.users.add(make_account(next(ids), "Alice", "x@example.com"))
        await store.users.add(bob)
    assert await store.users.get(bob.id) == bob


async def test_get_many_returns_the_known_ones(storage: Storage, ids: Iterator[int]) -> None:
    users = storage.store.users
    a = make_account(next(ids), "a")
    b = make_account(next(ids), "b")
    await users.add(a)
    await users.add(b)
    assert await users.get_many([b.id, a.id, b.id, 42]) == {a.id: a, b.id: b}
    assert await users.get_many([]) == {}


async def test_update_profile_changes_only_what_is_set(
    storage: Storage, ids: Iterator[int]
) -> None:
    users = storage.store.users
    alice = make_account(next(ids), "alice", bio="old bio", avatar_media_id=7)
    await users.add(alice)

    updated = await users.update_profile(alice.id, ProfileChanges(display_name="Alice A."))
    assert updated is not None
    assert (updated.display_name, updated.bio, updated.avatar_media_id) == (
        "Alice A.",
        "old bio",
        7,
    )

    cleared = await users.update_profile(alice.id, ProfileChanges(bio="", avatar_media_id=None))
    assert cleared is not None
    assert (cleared.display_name, cleared.bio, cleared.avatar_media_id) == ("Alice A.", "", None)
    assert await users.get(alice.id) == cleared
    assert await users.update_profile(alice.id, ProfileChanges()) == cleared
    assert await users.update_profile(next(ids), ProfileChanges(bio="x")) is None


async def test_password_token_version_and_touch(storage: Storage, ids: Iterator[int]) -> None:
    users = storage.store.users
    alice = make_account(next(ids), "alice")
    await users.add(alice)

    await users.set_password_hash(alice.id, "new-hash")
    assert await users.bump_token_version(alice.id) == 1
    assert await users.bump_token_version(alice.id) == 2
    await users.touch(alice.id, at(60))
    await users.touch(alice.id, at(30))  # late and out of order: ignored

    stored = await users.get(alice.id)
    assert stored is not None
    assert (stored.password_hash, stored.token_version) == ("new-hash", 2)
    assert stored.last_active_at == at(60)


async def test_follow_unfollow_are_idempotent_and_listed_newest_first(
    storage: Storage, ids: Iterator[int]
) -> None:
    rel = storage.store.relations
    alice, bob, carol = next(ids), next(ids), next(ids)
    e1, e2 = next(ids), next(ids)

    assert await rel.follow(e1, bob, alice, at()) is True
    assert await rel.follow(next(ids), bob, alice, at()) is False
    assert await rel.follow(e2, carol, alice, at()) is True

    followers = await rel.followers(alice, PageRequest())
    assert [(e.id, e.user_id) for e in followers] == [(e2, carol), (e1, bob)]
    assert [e.user_id for e in await rel.followers(alice, PageRequest(max_id=e2))] == [bob]
    assert [e.user_id for e in await rel.following(bob, PageRequest())] == [alice]
    assert sorted(await rel.follower_ids(alice)) == sorted([bob, carol])

    assert await rel.unfollow(bob, alice) is True
    assert await rel.unfollow(bob, alice) is False
    assert await rel.follower_ids(alice) == [carol]

    # A follow that raced a block (either way) is not followed for fan-out.
    dave, erin = next(ids), next(ids)
    await rel.follow(next(ids), dave, alice, at())
    await rel.follow(next(ids), erin, alice, at())
    await rel.block(next(ids), alice, dave, at())
    await rel.block(next(ids), erin, alice, at())
    assert await rel.follower_ids(alice) == [carol]


async def test_blocks_and_relationship_flags(storage: Storage, ids: Iterator[int]) -> None:
    rel = storage.store.relations
    alice, bob, carol = next(ids), next(ids), next(ids)

    await rel.follow(next(ids), alice, bob, at())
    assert await rel.block(next(ids), bob, carol, at()) is True
    assert await rel.block(next(ids), bob, carol, at()) is False

    seen_by_alice = await rel.relationship(alice, bob)
    assert seen_by_alice.user_id == bob
    assert (seen_by_alice.following, seen_by_alice.followed_by) == (True, False)
    assert (seen_by_alice.blocking, seen_by_alice.blocked_by) == (False, False)
    seen_by_bob = await rel.relationship(bob, alice)
    assert (seen_by_bob.following, seen_by_bob.followed_by) == (False, True)
    seen_by_carol = await rel.relationship(carol, bob)
    assert (seen_by_carol.blocking, seen_by_carol.blocked_by) == (False, True)

    assert await rel.blocked_either_way(bob, carol)
    assert await rel.blocked_either_way(carol, bob)
    assert not await rel.blocked_either_way(alice, carol)
    assert await rel.block_set(carol) == {bob}
    assert await rel.block_set(bob) == {carol}

    assert await rel.unblock(bob, carol) is True
    assert await rel.unblock(bob, carol) is False
    assert await rel.block_set(carol) == set()


def _token(token_hash: str, user_id: int, family: str) -> RefreshToken:
    return RefreshToken(
        token_hash=token_hash,
        user_id=user_id,
        family_id=family,
        created_at=at(),
        expires_at=at(3600),
    )


async def test_refresh_token_is_spent_exactly_once_under_concurrency(storage: Storage) -> None:
    tokens = storage.store.refresh_tokens
    await tokens.add(_token("a" * 64, 1, "fam-1"))
    assert await tokens.get("a" * 64) == _token("a" * 64, 1, "fam-1")
    assert await tokens.get("b" * 64) is None

    async def spend() -> bool:
        async with storage.store.transaction():
            return await tokens.mark_rotated("a" * 64, at(5))

    results = await asyncio.gather(*(spend() for _ in range(8)))
    assert sorted(results) == [False] * 7 + [True]
    spent = await tokens.get("a" * 64)
    assert spent is not None and spent.rotated_at == at(5)


async def test_revoke_family_and_user(storage: Storage) -> None:
    tokens = storage.store.refresh_tokens
    await tokens.add(_token("a" * 64, 1, "fam-1"))
    await tokens.add(_token("b" * 64, 1, "fam-1"))
    await tokens.add(_token("c" * 64, 1, "fam-2"))
    await tokens.add(_token("d" * 64, 2, "fam-3"))

    await tokens.revoke_family("fam-1", at(1))
    revoked = [(await tokens.get(h * 64)) for h in "abcd"]
    assert [t.revoked_at if t else None for t in revoked] == [at(1), at(1), None, None]

    await tokens.revoke_user(1, at(2))
    revoked = [(await tokens.get(h * 64)) for h in "abcd"]
    # Already revoked ones keep their first revocation time.
    assert [t.revoked_at if t else None for t in revoked] == [at(1), at(1), at(2), None]


async def test_honours_an_access_token_until_its_version_or_login_is_revoked(
    storage: Storage, ids: Iterator[int]
) -> None:
    users, tokens = storage.store.users, storage.store.refresh_tokens
    alice = make_account(next(ids), "alice")
    await users.add(alice)
    await tokens.add(_token("a" * 64, alice.id, "fam-1"))
    await tokens.add(_token("b" * 64, alice.id, "fam-2"))

    assert await users.honours(alice.id, 0, "fam-1")
    assert not await users.honours(next(ids), 0, "fam-1")  # no such account
    assert not await users.honours(alice.id, 1, "fam-1")  # a version it never had

    await tokens.revoke_family("fam-1", at(1))  # that login logged out
    assert not await users.honours(alice.id, 0, "fam-1")
    assert await users.honours(alice.id, 0, "fam-2")

    await users.bump_token_version(alice.id)  # logout everywhere
    assert not await users.honours(alice.id, 0, "fam-2")
    assert await users.honours(alice.id, 1, "fam-2")


async def test_concurrent_honours_questions_each_get_their_own_answer(
    storage: Storage, ids: Iterator[int]
) -> None:
    # Asked in one loop turn, they travel as one statement (storage.batching).
    users, tokens = storage.store.users, storage.store.refresh_tokens
    accounts = [make_account(next(ids), f"user{n}") for n in range(6)]
    for n, account in enumerate(accounts):
        await users.add(account)
        await tokens.add(_token(f"{n}" * 64, account.id, f"fam-{n}"))
    await tokens.revoke_family("fam-1", at(1))
    asked = [(a.id, 0, f"fam-{n}") for n, a in enumerate(accounts)]
    asked += [(accounts[2].id, 1, "fam-2"), (next(ids), 0, "fam-0"), (accounts[3].id, 0, "fam-3")]
    answers = await asyncio.gather(*(users.honours(*key) for key in asked))
    assert answers == [True, False, True, True, True, True, False, False, True]
