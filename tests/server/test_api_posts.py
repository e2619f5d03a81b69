"""/posts: create, idempotency, read, delete, likes and comments."""

from __future__ import annotations

import asyncio

from api_world import BOTH_BACKENDS, Api, assert_error


@BOTH_BACKENDS
async def test_create_get_and_shape(api: Api) -> None:
    alice = await api.user()
    r = await api.post("/posts", alice, json={"content": "hello world"})
    assert r.status_code == 201, r.text
    post = r.json()
    assert set(post) == {
        "id",
        "author",
        "content",
        "media",
        "like_count",
        "comment_count",
        "liked_by_me",
        "created_at",
    }
    assert post["author"]["id"] == alice.id and "email" not in post["author"]
    assert (post["content"], post["media"], post["like_count"]) == ("hello world", [], 0)
    r = await api.get(f"/posts/{post['id']}")
    assert r.status_code == 200 and r.json()["id"] == post["id"]


async def test_content_validation(api: Api) -> None:
    alice = await api.user()
    assert_error(await api.post("/posts", alice, json={"content": "   "}), 422)
    assert_error(await api.post("/posts", alice, json={"content": "x" * 501}), 422)
    assert_error(await api.post("/posts", alice, json={"content": 42}), 422)
    assert_error(await api.post("/posts", alice, json={}), 422)
    r = await api.post("/posts", alice, json={"content": "hi", "media_ids": ["1"]})
    assert_error(r, 422, "invalid_media")
    r = await api.post("/posts", alice, json={"content": "hi", "author_id": alice.id})
    assert_error(r, 422)
    assert_error(await api.post("/posts", json={"content": "anonymous"}), 401, "unauthenticated")


@BOTH_BACKENDS
async def test_delete_is_author_only_and_hides_the_post(api: Api) -> None:
    alice, bob = await api.user(), await api.user()
    await api.post(f"/users/{alice.id}/follow", bob)
    post = await api.create_post(alice, "soon gone")
    keep = await api.create_post(alice, "stays")
    assert_error(await api.delete(f"/posts/{post['id']}", bob), 403, "forbidden")
    r = await api.delete(f"/posts/{post['id']}", alice)
    assert r.status_code == 204 and r.content == b""
    assert_error(await api.get(f"/posts/{post['id']}", alice), 404)
    assert_error(await api.delete(f"/posts/{post['id']}", alice), 404)
    for path, who in ((f"/users/{alice.id}/posts", bob), ("/feed", bob), ("/feed", alice)):
        ids = [p["id"] for p in (await api.get(path, who)).json()]
        assert ids == [keep["id"]], path
    r = await api.get("/search", bob, params={"q": "soon", "type": "posts"})
    assert r.json() == []


@BOTH_BACKENDS
async def test_idempotency_key_returns_the_same_post(api: Api) -> None:
    alice, bob = await api.user(), await api.user()
    key = {"Idempotency-Key": "k-123"}
    first = await api.post("/posts", alice, json={"content": "once"}, headers=key)
    again = await api.post("/posts", alice, json={"content": "once"}, headers=key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    # Keys are per author: bob's request with the same key is his own post.
    other = await api.post("/posts", bob, json={"content": "once"}, headers=key)
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    posts = (await api.get(f"/users/{alice.id}/posts")).json()
    assert len(posts) == 1


@BOTH_BACKENDS
async def test_concurrent_requests_with_one_key_make_one_post(api: Api) -> None:
    alice = await api.user()
    key = {"Idempotency-Key": "retry-storm"}
    responses = await asyncio.gather(
        *(api.post("/posts", alice, json={"content": "x"}, headers=key) for _ in range(8))
    )
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.status_code == 201 for r in responses) == 1
    assert len((await api.get(f"/users/{alice.id}/posts")).json()) == 1


async def test_bad_idempotency_key(api: Api) -> None:
    alice = await api.user()
    r = await api.post(
        "/posts", alice, json={"content": "x"}, headers={"Idempotency-Key": "k" * 300}
    )
    assert_error(r, 422)


@BOTH_BACKENDS
async def test_likes_are_idempotent(api: Api) -> None:
    alice, bob = await api.user(), await api.user()
    post = await api.create_post(alice)
    for _ in range(2):
        r = await api.post(f"/posts/{post['id']}/likes", bob)
        assert r.status_code == 200, r.text
        assert (r.json()["like_count"], r.json()["liked_by_me"]) == (1, True)
    r = await api.get(f"/posts/{post['id']}/likes", alice)
    assert [u["id"] for u in r.json()] == [bob.id]
    for _ in range(2):
        r = await api.delete(f"/posts/{post['id']}/likes", bob)
        assert (r.json()["like_count"], r.json()["liked_by_me"]) == (0, False)
    assert (await api.get(f"/posts/{post['id']}/likes", alice)).json() == []


@BOTH_BACKENDS
async def test_like_counts_are_exact_under_concurrency(api: Api) -> None:
    author = await api.user()
    fans = [await api.user() for _ in range(6)]
    post = await api.create_post(author)
    path = f"/posts/{post['id']}/likes"
    # Every fan likes twice at once: six likes, never twelve, never lost updates.
    results = await asyncio.gather(*(api.post(path, fan) for fan in fans for _ in range(2)))
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    assert (await api.get(f"/posts/{post['id']}")).json()["like_count"] == 6
    results = await asyncio.gather(*(api.delete(path, fan) for fan in fans[:4] for _ in range(2)))
    assert all(r.status_code == 200 for r in results)
    assert (await api.get(f"/posts/{post['id']}")).json()["like_count"] == 2


@BOTH_BACKENDS
async def test_comments(api: Api) -> None:
    alice, bob = await api.user(), await api.user()
    post = await api.create_post(alice)
    r = await api.post(f"/posts/{post['id']}/comments", bob, json={"content": "first!"})
    assert r.status_code == 201, r.text
    comment = r.json()
    assert set(comment) == {"id", "post_id", "author", "content", "created_at"}
    assert (comment["post_id"], comment["author"]["id"]) == (post["id"], bob.id)
    await api.post(f"/posts/{post['id']}/comments", alice, json={"content": "thanks"})
    r = await api.get(f"/posts/{post['id']}/comments")
    assert [c["content"] for c in r.json()] == ["thanks", "first!"]
    assert "Link" in r.headers
    assert (await api.get(f"/posts/{post['id']}")).json()["comment_count"] == 2
    r = await api.post(f"/posts/{post['id']}/comments", bob, json={"content": ""})
    assert_error(r, 422)
    assert_error(await api.post("/posts/123/comments", bob, json={"content": "x"}), 404)
