"""AccountService: registration and own-profile updates."""

from __future__ import annotations

import msgspec
import pytest
from domain_world import World

from domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from domain.models import ProfileChanges
from domain.views import MeView, UserView


async def test_register_normalises_and_hashes(w: World) -> None:
    account = await w.accounts.register("  Alice ", "Alice@Example.COM", "correct horse")
    assert account.username == "alice"
    assert account.email == "Alice@example.com"
    assert account.password_hash == "h$correct horse"
    assert account.display_name == "alice"
    assert account.token_version == 0
    assert account.created_at == account.last_active_at == w.clock.now()
    assert await w.store.users.get(account.id) == account
    assert w.store.events == []  # registration announces nothing


@pytest.mark.parametrize(
    ("username", "email", "code"),
    [
        ("ALICE", "other@example.com", "username_taken"),
        ("alice2", "ALICE@example.com", "email_taken"),
    ],
)
async def test_register_duplicate_is_a_conflict(
    w: World, username: str, email: str, code: str
) -> None:
    await w.accounts.register("alice", "alice@example.com", "correct horse")
    with pytest.raises(Conflict) as info:
        await w.accounts.register(username, email, "correct horse")
    assert info.value.code == code
    assert info.value.status == 409
    assert len(w.store.state.users) == 1


async def test_register_validates_before_hashing(w: World) -> None:
    for args in (
        ("a!", "a@example.com", "correct horse"),
        ("alice", "not-an-email", "correct horse"),
        ("alice", "a@example.com", "short"),
    ):
        with pytest.raises(ValidationFailed):
            await w.accounts.register(*args)
    assert w.hasher.hashed == []  # no CPU spent on refused input
    assert w.store.state.users == {}


async def test_views_never_leak_secrets(w: World) -> None:
    account = await w.user("alice")
    public = msgspec.json.decode(msgspec.json.encode(UserView.of(account)))
    me = msgspec.json.decode(msgspec.json.encode(MeView.of_me(account)))
    assert public["id"] == str(account.id)  # ids travel as strings
    assert "email" not in public
    assert me["email"] == "alice@example.com"
    for body in (public, me):
        assert "password_hash" not in body
        assert "token_version" not in body
        assert "h$" not in msgspec.json.encode(body).decode()


async def test_update_own_profile(w: World) -> None:
    alice = await w.user("alice")
    changed = await w.accounts.update_profile(
        alice.id, alice.id, ProfileChanges(display_name="  Alice A. ", bio="hi")
    )
    assert changed.display_name == "Alice A."
    assert changed.bio == "hi"
    # UNSET fields are left alone.
    again = await w.accounts.update_profile(alice.id, alice.id, ProfileChanges(bio="bye"))
    assert (again.display_name, again.bio) == ("Alice A.", "bye")


async def test_update_someone_elses_profile_is_forbidden(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    with pytest.raises(Forbidden):
        await w.accounts.update_profile(alice.id, bob.id, ProfileChanges(bio="pwned"))
    assert (await w.accounts.get(alice.id, None)).bio == ""


async def test_avatar_must_be_own_media(w: World) -> None:
    alice, bob = await w.users("alice", "bob")
    bobs = await w.upload(bob.id)
    with pytest.raises(ValidationFailed) as info:
        await w.accounts.update_profile(alice.id, alice.id, ProfileChanges(avatar_media_id=bobs.id))
    assert info.value.code == "invalid_media"
    with pytest.raises(ValidationFailed):
        await w.accounts.update_profile(alice.id, alice.id, ProfileChanges(avatar_media_id=12345))
    mine = await w.upload(alice.id)
    changed = await w.accounts.update_profile(
        alice.id, alice.id, ProfileChanges(avatar_media_id=mine.id)
    )
    assert changed.avatar_media_id == mine.id
    cleared = await w.accounts.update_profile(
        alice.id, alice.id, ProfileChanges(avatar_media_id=None)
    )
    assert cleared.avatar_media_id is None


async def test_protected_fields_are_not_settable(w: World) -> None:
    alice = await w.user("alice")
    # A body as a client might send it: only the three profile fields are decoded.
    body = (
        b'{"username": "root", "email": "x@evil.test", "password_hash": "h$x",'
        b' "token_version": 99, "id": "1", "bio": "ok"}'
    )
    changes = msgspec.json.decode(body, type=ProfileChanges)
    changed = await w.accounts.update_profile(alice.id, alice.id, changes)
    assert changed.bio == "ok"
    assert (changed.username, changed.email, changed.password_hash, changed.token_version) == (
        alice.username,
        alice.email,
        alice.password_hash,
        alice.token_version,
    )


async def test_invalid_profile_fields(w: World) -> None:
    alice = await w.user("alice")
    for changes in (ProfileChanges(display_name="x" * 51), ProfileChanges(bio="b" * 501)):
        with pytest.raises(ValidationFailed):
            await w.accounts.update_profile(alice.id, alice.id, changes)


async def test_get_unknown_user(w: World) -> None:
    with pytest.raises(NotFound) as info:
        await w.accounts.get(999, None)
    assert info.value.status == 404
