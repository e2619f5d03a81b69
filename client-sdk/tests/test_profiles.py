"""Own profile (Me, with email) versus anyone's profile (User, no email field), through the
client's methods over a mock transport that answers in the server's shapes."""

from __future__ import annotations

import json

import httpx
from payloads import USER

from plaza_client import AsyncClient, Client, Me, User

ME = {**USER, "email": "alice@example.com"}
BOB = {**USER, "id": "1099511627776002", "username": "bob"}
PAIR = {
    "access_token": "a",
    "refresh_token": "r",
    "token_type": "Bearer",
    "expires_in": 900,
    "user": ME,
}


def _server(request: httpx.Request) -> httpx.Response:
    path = request.url.path.removeprefix("/api/v1")
    if path == "/auth/register":
        return httpx.Response(201, json=ME)
    if path == "/auth/login":
        return httpx.Response(200, json=PAIR)
    if path == "/users/me":
        return httpx.Response(200, json=ME)
    if request.method == "PATCH" and path == f"/users/{ME['id']}":
        return httpx.Response(200, json={**ME, **json.loads(request.content)})
    if path == f"/users/{BOB['id']}":
        return httpx.Response(200, json=BOB)
    return httpx.Response(404, json={"error": {"code": "not_found", "message": path}})


async def test_own_profile_is_me_others_are_users() -> None:
    async with AsyncClient(transport=httpx.MockTransport(_server)) as c:
        registered = await c.register("alice", "alice@example.com", "correct horse battery")
        assert isinstance(registered, Me) and registered.email == "alice@example.com"
        pair = await c.login("alice", "correct horse battery")
        assert isinstance(pair.user, Me) and c.user == pair.user
        assert (await c.me()).email == "alice@example.com"

        updated = await c.update_profile(bio="changed")
        assert isinstance(updated, Me) and updated.bio == "changed"
        assert c.user == updated and c.user.email == "alice@example.com"

        bob = await c.get_user(BOB["id"])
        assert type(bob) is User and bob.username == "bob"
        assert not hasattr(bob, "email")


def test_sync_client_returns_the_same_types() -> None:
    with Client(transport=httpx.MockTransport(_server)) as c:
        c.login("alice", "correct horse battery")
        assert isinstance(c.user, Me) and isinstance(c.me(), Me)
        assert not hasattr(c.get_user(BOB["id"]), "email")
