"""AuthService: login, refresh rotation with reuse detection, logout, password change."""

from __future__ import annotations

import pytest
from domain_world import REFRESH_TTL, World

from domain.errors import Unauthorized, ValidationFailed
from domain.services.auth import hash_refresh_token

PASSWORD = "correct horse"


@pytest.mark.parametrize(
    "login", ["alice", "ALICE", " alice ", "alice@example.com", "Alice@Example.com"]
)
async def test_login_by_username_or_email(w: World, login: str) -> None:
    alice = await w.user("alice", PASSWORD)
    pair = await w.auth.login(login, PASSWORD)
    assert pair.user.id == str(alice.id)
    assert pair.user.email == "alice@example.com"
    assert pair.token_type == "Bearer"
    assert pair.expires_in == w.tokens.ttl_seconds
    principal = await w.auth.authenticate(pair.access_token)
    assert principal.user_id == alice.id
    # Only the hash of the refresh token is stored.
    assert pair.refresh_token not in w.store.state.refresh_tokens
    record = w.store.state.refresh_tokens[hash_refresh_token(pair.refresh_token)]
    assert record.family_id == principal.session_id
    assert (record.expires_at - record.created_at).total_seconds() == REFRESH_TTL


async def test_login_records_activity(w: World) -> None:
    alice = await w.user("alice")
    w.clock.advance(3600)
    await w.auth.login("alice", PASSWORD)
    assert (await w.store.users.get(alice.id)).last_active_at == w.clock.now()  # type: ignore[union-attr]


async def test_unknown_account_and_wrong_password_look_the_same(w: World) -> None:
    await w.user("alice", PASSWORD)
    with pytest.raises(Unauthorized) as unknown:
        await w.auth.login("nobody", PASSWORD)
    assert w.hasher.burned == [PASSWORD]  # unknown accounts cost a hash too
    with pytest.raises(Unauthorized) as wrong:
        await w.auth.login("alice", "wrong horse")
    assert w.hasher.burned == [PASSWORD]  # the real verify already cost one
    assert unknown.value.code == wrong.value.code == "invalid_credentials"
    assert unknown.value.message == wrong.value.message
    assert unknown.value.status == wrong.value.status == 401
    assert w.store.state.refresh_tokens == {}


@pytest.mark.parametrize(
    ("login", "password"),
    [
        ("", PASSWORD),
        ("alice", "x" * 2000),
        ("alice\x00", PASSWORD),
        ("a\x00@example.com", PASSWORD),
    ],
)
async def test_degenerate_logins_burn_and_fail(w: World, login: str, password: str) -> None:
    await w.user("alice", PASSWORD)
    w.store.calls.clear()
    with pytest.raises(Unauthorized) as info:
        await w.auth.login(login, password)
    assert info.value.code == "invalid_credentials"
    assert w.store.calls["FakeUsers.find_by_login"] == 0  # never reaches the database
    assert len(w.hasher.burned) == 1
    assert len(w.hasher.burned[0]) <= 1024  # never hash a huge password


async def test_outdated_hash_is_upgraded_on_login(w: World) -> None:
    alice = await w.user("alice", PASSWORD)
    async with w.store.transaction():
        await w.store.users.set_password_hash(alice.id, "old$" + PASSWORD)
    await w.auth.login("alice", PASSWORD)
    assert (await w.store.users.get(alice.id)).password_hash == "h$" + PASSWORD  # type: ignore[union-attr]
    hashed_before = len(w.hasher.hashed)
    await w.auth.login("alice", PASSWORD)
    assert len(w.hasher.hashed) == hashed_before  # current hashes are left alone


async def test_refresh_rotates(w: World) -> None:
    await w.user("alice")
    first = await w.auth.login("alice", PASSWORD)
    w.clock.advance(60)
    second = await w.auth.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    old = w.store.state.refresh_tokens[hash_refresh_token(first.refresh_token)]
    new = w.store.state.refresh_tokens[hash_refresh_token(second.refresh_token)]
    assert old.rotated_at == w.clock.now()
    assert new.family_id == old.family_id  # same login, same session id
    assert (await w.auth.authenticate(second.access_token)).session_id == old.family_id
    third = await w.auth.refresh(second.refresh_token)
    assert (await w.auth.authenticate(third.access_token)).user_id == int(first.user.id)
    assert w.revoker.revoked == []


async def test_reusing_a_spent_refresh_token_revokes_the_family(w: World) -> None:
    alice = await w.user("alice")
    pair = await w.auth.login("alice", PASSWORD)
    other_login = await w.auth.login("alice", PASSWORD)
    rotated = await w.auth.refresh(pair.refresh_token)
    session = (await w.auth.authenticate(pair.access_token)).session_id

    with pytest.raises(Unauthorized) as info:
        await w.auth.refresh(pair.refresh_token)  # a thief (or a confused client) replays
    assert info.value.code == "refresh_token_reused"
    assert w.revoker.revoked == [(alice.id, session)]
    # Every token of that login is dead, including the legitimately rotated one...
    with pytest.raises(Unauthorized) as dead:
        await w.auth.refresh(rotated.refresh_token)
    assert dead.value.code == "invalid_token"
    # ...but the user's other login is untouched.
    assert (await w.auth.refresh(other_login.refresh_token)).user.id == str(alice.id)


async def test_refresh_unknown_or_expired_token(w: World) -> None:
    await w.user("alice")
    with pytest.raises(Unauthorized) as unknown:
        await w.auth.refresh("not-a-token")
    assert unknown.value.code == "invalid_token"
    pair = await w.auth.login("alice", PASSWORD)
    w.clock.advance(REFRESH_TTL)
    with pytest.raises(Unauthorized) as expired:
        await w.auth.refresh(pair.refresh_token)
    assert expired.value.code == "invalid_token"
    assert w.revoker.revoked == []  # expiry is not theft


async def test_logout_revokes_the_family_and_closes_its_sockets(w: World) -> None:
    alice = await w.user("alice")
    pair = await w.auth.login("alice", PASSWORD)
    rotated = await w.auth.refresh(pair.refresh_token)
    other = await w.auth.login("alice", PASSWORD)
    session = (await w.auth.authenticate(rotated.access_token)).session_id
    await w.auth.logout(rotated.refresh_token)
    assert w.revoker.revoked == [(alice.id, session)]
    with pytest.raises(Unauthorized):
        await w.auth.refresh(rotated.refresh_token)
    await w.auth.refresh(other.refresh_token)  # other devices stay logged in
    with pytest.raises(Unauthorized):
        await w.auth.logout("not-a-token")


async def test_change_password_kills_old_tokens(w: World) -> None:
    alice = await w.user("alice")
    pair = await w.auth.login("alice", PASSWORD)
    await w.auth.authenticate(pair.access_token)
    await w.auth.change_password(alice.id, PASSWORD, "battery staple")
    assert w.revoker.revoked_users == [alice.id]  # open sockets close too
    with pytest.raises(Unauthorized) as info:
        await w.auth.authenticate(pair.access_token)
    assert info.value.code == "invalid_token"
    with pytest.raises(Unauthorized):
        await w.auth.refresh(pair.refresh_token)
    with pytest.raises(Unauthorized):
        await w.auth.login("alice", PASSWORD)
    fresh = await w.auth.login("alice", "battery staple")
    assert (await w.auth.authenticate(fresh.access_token)).user_id == alice.id


async def test_change_password_checks_old_and_new(w: World) -> None:
    alice = await w.user("alice")
    with pytest.raises(Unauthorized):
        await w.auth.change_password(alice.id, "wrong horse", "battery staple")
    with pytest.raises(ValidationFailed):
        await w.auth.change_password(alice.id, PASSWORD, "short")
    assert w.revoker.revoked_users == []
    account = await w.store.users.get(alice.id)
    assert account is not None
    assert (account.password_hash, account.token_version) == ("h$" + PASSWORD, 0)


async def test_logout_everywhere(w: World) -> None:
    alice = await w.user("alice")
    a = await w.auth.login("alice", PASSWORD)
    b = await w.auth.login("alice", PASSWORD)
    await w.auth.logout_everywhere(alice.id)
    assert w.revoker.revoked_users == [alice.id]
    for pair in (a, b):
        with pytest.raises(Unauthorized):
            await w.auth.authenticate(pair.access_token)
        with pytest.raises(Unauthorized):
            await w.auth.refresh(pair.refresh_token)


async def test_authenticate_rejects_bad_expired_and_orphaned_tokens(w: World) -> None:
    alice = await w.user("alice")
    pair = await w.auth.login("alice", PASSWORD)
    for junk in ("", "garbage", pair.access_token + "x"):
        with pytest.raises(Unauthorized):
            await w.auth.authenticate(junk)
    w.clock.advance(w.tokens.ttl_seconds)
    with pytest.raises(Unauthorized):
        await w.auth.authenticate(pair.access_token)
    fresh = await w.auth.refresh(pair.refresh_token)
    del w.store.state.users[alice.id]
    with pytest.raises(Unauthorized):
        await w.auth.authenticate(fresh.access_token)
