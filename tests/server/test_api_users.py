"""/users: profiles, follow lists, follow and block."""

from __future__ import annotations

import pytest
from api_world import BOTH_BACKENDS, Api, assert_error


async def test_others_see_no_email_and_self_does(api: Api) -> None:
    alice, bob = await api.user(), await api.user()
    r = await api.get(f"/users/{alice.id}", bob)
    assert r.status_code == 200
    assert "email" not in r.json() and r.json()["id"] == alice.id
    r = await api.get(f"/users/{alice.id}")  # anonymous public read
    assert r.status_code == 200 and "email" not in r.json()
    r = await api.get(f"/users/{alice.id}", alice)
    assert r.json()["email"] == alice.email
    assert_error(await api.get("/users/999999999", bob), 404, "not_found")


@BOTH_BACKENDS
async def test_edit_own_profile_with_put_and_patch(api: Api) -> None:
    alice = await api.user()
    r = await api.patch(f"/users/{alice.id}", alice, json={"display_name": " Alice A. "})
    assert r.status_code == 200, r.text
    assert r.json()["display_name"] == "Alice A."
    r = await api.put(f"/users/{alice.id}", alice, json={"bio": "hi there"})
    assert r.status_code == 200
    me = (await api.get("/users/me", alice)).json()
    assert (me["display_name"], me["bio"]) == ("Alice A.", "hi there")


async def test_cannot_edit_someone_elses_profile(api: Api) -> None:
    alice, mallory = await api.user(), await api.user()
    r = await api.patch(f"/users/{alice.id}", mallory, json={"bio": "pwned"})
    assert_error(r, 403, "forbidden")
    assert (await api.get("/users/me", alice)).json()["bio"] == ""


@pytest.mark.parametrize(
    "body",
    [
        {"id": "1"},
        {"username": "root"},
        {"email": "x@example.com"},
        {"password_hash": "$argon2id$..."},
        {"token_version": 0},
        {"followers_count": 10},
        {"bio": "ok", "is_admin": True},
    ],
)
async def test_protected_and_unknown_fields_are_refused(api: Api, body: dict[str, object]) -> None:
    alice = await api.user()
    r = await api.patch(f"/users/{alice.id}", alice, json=body)
    assert_error(r, 422, "validation_error")
    assert (await api.get("/users/me", alice)).json()["username"] == alice.username


async def test_profile_field_validation(api: Api) -> None:
    alice, bob = await api.user(), await api.user()
    assert_error(await api.patch(f"/users/{alice.id}", alice, json={"bio": 5}), 422)
    assert_error(await api.patch(f"/users/{alice.id}", alice, json={"bio": "x" * 501}), 422)
    r = await api.patch(f"/users/{alice.id}", alice, json={"avatar_media_id": "12"})
    assert_error(r, 422, "invalid_media")
    r = await api.patch(f"/users/{alice.id}", alice, json={"avatar_media_id": "abc"})
    assert_error(r, 422, "validation_error")
    r = await api.patch(f"/users/{alice.id}", alice, json={"avatar_media_id": None})
    assert r.status_code == 200
    assert_error(await api.patch(f"/users/{bob.id}", alice, json=[1]), 422)


@BOTH_BACKENDS
async def test_follow_unfollow_and_lists(api: Api) -> None:
    alice, bob, carol = await api.user(), await api.user(), await api.user()
    r = await api.post(f"/users/{bob.id}/follow", alice)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "user_id": bob.id,
        "following": True,
        "followed_by": False,
        "blocking": False,
    }
    # Following twice is idempotent.
    assert (await api.post(f"/users/{bob.id}/follow", alice)).json()["following"] is True
    await api.post(f"/users/{bob.id}/follow", carol)
    r = await api.get(f"/users/{bob.id}/followers", alice)
    assert [u["id"] for u in r.json()] == [carol.id, alice.id]
    assert 'rel="next"' in r.headers["Link"]
    r = await api.get(f"/users/{alice.id}/following", alice)
    assert [u["id"] for u in r.json()] == [bob.id]
    r = await api.get(f"/users/{alice.id}/relationship", bob)
    assert r.json()["followed_by"] is True
    r = await api.delete(f"/users/{bob.id}/follow", alice)
    assert r.status_code == 200 and r.json()["following"] is False
    r = await api.get(f"/users/{bob.id}/followers", alice)
    assert [u["id"] for u in r.json()] == [carol.id]


async def test_follow_lists_page_with_link_headers(api: Api) -> None:
    star = await api.user()
    fans = [await api.user() for _ in range(5)]
    for fan in fans:
        await api.post(f"/users/{star.id}/follow", fan)
    seen: list[str] = []
    url = f"/users/{star.id}/followers?limit=2"
    while True:
        r = await api.get(url, star)
        if not r.json():
            break
        seen += [u["id"] for u in r.json()]
        url = _next_path(r.headers["Link"])
    assert seen == [f.id for f in reversed(fans)]


async def test_self_follow_and_self_block_are_422(api: Api) -> None:
    alice = await api.user()
    assert_error(await api.post(f"/users/{alice.id}/follow", alice), 422, "cannot_follow_self")
    assert_error(await api.post(f"/users/{alice.id}/block", alice), 422, "cannot_block_self")
    assert_error(await api.post("/users/424242424242/follow", alice), 404, "not_found")


@BOTH_BACKENDS
async def test_block_removes_follows_and_forbids_interaction(api: Api) -> None:
    alice, bob = await api.user(), await api.user()
    await api.post(f"/users/{bob.id}/follow", alice)
    await api.post(f"/users/{alice.id}/follow", bob)
    post = await api.create_post(alice, "alice's post")
    r = await api.post(f"/users/{bob.id}/block", alice)
    assert r.status_code == 200
    assert r.json() == {
        "user_id": bob.id,
        "following": False,
        "followed_by": False,
        "blocking": True,
    }
    # Bob can no longer see alice, follow her, or touch her posts.
    assert_error(await api.get(f"/users/{alice.id}", bob), 404)
    assert_error(await api.post(f"/users/{alice.id}/follow", bob), 404)
    assert_error(await api.get(f"/posts/{post['id']}", bob), 404)
    assert_error(await api.post(f"/posts/{post['id']}/likes", bob), 404)
    r = await api.post(f"/posts/{post['id']}/comments", bob, json={"content": "hey"})
    assert_error(r, 404)
    # Alice (the blocker) cannot follow bob either while the block stands.
    assert_error(await api.post(f"/users/{bob.id}/follow", alice), 403, "blocked")
    assert (await api.get(f"/users/{bob.id}/followers", alice)).json() == []
    bob_post = await api.create_post(bob, "bob's post")
    assert (await api.get("/feed", alice)).json() == [] or all(
        p["id"] != bob_post["id"] for p in (await api.get("/feed", alice)).json()
    )
    r = await api.delete(f"/users/{bob.id}/block", alice)
    assert r.json()["blocking"] is False
    assert (await api.get(f"/posts/{post['id']}", bob)).status_code == 200


def _next_path(link: str) -> str:
    """The path (under /api/v1) of the rel="next" URL of a Link header."""
    for part in link.split(","):
        url, _, rel = part.partition(";")
        if 'rel="next"' in rel:
            full = url.strip().strip("<>")
            return full.split("/api/v1", 1)[1]
    raise AssertionError(f"no next link in {link!r}")
