"""GET /feed (paging and Link headers), notifications, search."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from api_world import BOTH_BACKENDS, Api, assert_error


def links(header: str) -> dict[str, dict[str, str]]:
    """rel -> query parameters of each URL in a Link header."""
    out = {}
    for part in header.split(","):
        url, _, rel = part.partition(";")
        name = rel.strip().removeprefix('rel="').removesuffix('"')
        query = parse_qs(urlsplit(url.strip().strip("<>")).query)
        out[name] = {k: v[0] for k, v in query.items()}
    return out


@BOTH_BACKENDS
async def test_feed_pages_with_link_headers(api: Api) -> None:
    reader, writer = await api.user(), await api.user()
    await api.post(f"/users/{writer.id}/follow", reader)
    ids = [(await api.create_post(writer, f"post {i}"))["id"] for i in range(7)]
    own = await api.create_post(reader, "mine")
    newest_first = [own["id"], *reversed(ids)]

    r = await api.get("/feed", reader, params={"limit": 3})
    assert [p["id"] for p in r.json()] == newest_first[:3]
    rels = links(r.headers["Link"])
    assert rels["next"] == {"limit": "3", "max_id": newest_first[2]}
    assert rels["prev"] == {"limit": "3", "min_id": newest_first[0]}

    seen: list[str] = []
    params: dict[str, str] = {"limit": "3"}
    while True:
        r = await api.get("/feed", reader, params=params)
        page = [p["id"] for p in r.json()]
        if not page:
            assert "Link" not in r.headers
            break
        seen += page
        params = links(r.headers["Link"])["next"]
    assert seen == newest_first

    # Paging forward from an old item returns the items right after it, newest first.
    r = await api.get("/feed", reader, params={"min_id": ids[1], "limit": 2})
    assert [p["id"] for p in r.json()] == [ids[3], ids[2]]
    r = await api.get("/feed", reader, params={"since_id": ids[4]})
    assert [p["id"] for p in r.json()] == [own["id"], ids[6], ids[5]]


async def test_limit_is_clamped_to_40(api: Api) -> None:
    alice = await api.user()
    for i in range(42):
        await api.create_post(alice, f"p{i}")
    assert len((await api.get("/feed", alice, params={"limit": 100})).json()) == 40
    assert len((await api.get("/feed", alice)).json()) == 20
    # Any number of digits is clamped, as documented; not a 422.
    r = await api.get("/feed", alice, params={"limit": "9999999999"})
    assert r.status_code == 200 and len(r.json()) == 40
    assert_error(await api.get("/feed", alice, params={"limit": "0"}), 422, "validation_error")


@BOTH_BACKENDS
async def test_lists_hiding_blocked_authors_never_end_early(api: Api) -> None:
    # A page whose rows are all hidden must not come back empty: clients stop at empty.
    reader, troll, friend = await api.user(), await api.user(), await api.user()
    post = await api.create_post(friend, "findable words here")
    await api.post(f"/posts/{post['id']}/comments", friend, json={"content": "first"})
    for i in range(25):
        await api.post(f"/posts/{post['id']}/comments", troll, json={"content": f"spam {i}"})
        await api.create_post(troll, f"findable spam {i}")
    await api.post(f"/users/{troll.id}/block", reader)

    r = await api.get(f"/posts/{post['id']}/comments", reader, params={"limit": 5})
    assert [c["content"] for c in r.json()] == ["first"]
    r = await api.get(f"/posts/{post['id']}/comments", friend, params={"limit": 5})
    assert len(r.json()) == 5  # the author's view is not filtered

    r = await api.get("/search", reader, params={"q": "findable", "limit": 5})
    assert [p["id"] for p in r.json()] == [post["id"]]
    r = await api.get("/search", None, params={"q": "findable", "limit": 5})
    assert len(r.json()) == 5  # anonymous readers see everything

    # Followers: the newest follower of the friend is the troll; the reader sees the other.
    other = await api.user()
    await api.post(f"/users/{friend.id}/follow", other)
    await api.post(f"/users/{friend.id}/follow", troll)
    r = await api.get(f"/users/{friend.id}/followers", reader, params={"limit": 1})
    assert [u["id"] for u in r.json()] == [other.id]


async def test_feed_needs_a_token(api: Api) -> None:
    assert_error(await api.get("/feed"), 401, "unauthenticated")


@BOTH_BACKENDS
async def test_notifications_from_likes_comments_and_follows(api: Api) -> None:
    alice, bob = await api.user(), await api.user()
    post = await api.create_post(alice)
    await api.post(f"/users/{alice.id}/follow", bob)
    await api.post(f"/posts/{post['id']}/likes", bob)
    await api.post(f"/posts/{post['id']}/comments", bob, json={"content": "nice"})
    await api.post(f"/posts/{post['id']}/likes", alice)  # own like: no notification
    await api.drain()
    await api.redeliver_everything()  # at-least-once: every event comes again...
    await api.drain()  # ...and writes nothing twice

    r = await api.get(f"/users/{alice.id}/notifications", alice)
    assert r.status_code == 200, r.text
    items = r.json()
    assert [n["kind"] for n in items] == ["comment", "like", "follow"]
    assert all(n["actor"]["id"] == bob.id and n["read"] is False for n in items)
    assert items[0]["post_id"] == post["id"] and items[0]["comment_id"] is not None
    assert items[2]["post_id"] is None
    assert (await api.get("/notifications/unread_count", alice)).json() == {"count": 3}

    r = await api.post("/notifications/read", alice, json={"up_to_id": items[1]["id"]})
    assert r.status_code == 200 and r.json() == {"count": 1}
    r = await api.post("/notifications/read", alice)
    assert r.json() == {"count": 0}
    items = (await api.get(f"/users/{alice.id}/notifications", alice)).json()
    assert all(n["read"] for n in items)


async def test_notifications_are_owner_only(api: Api) -> None:
    alice, bob = await api.user(), await api.user()
    assert_error(await api.get(f"/users/{alice.id}/notifications", bob), 403, "forbidden")
    assert_error(await api.get(f"/users/{alice.id}/notifications"), 401)
    r = await api.post("/notifications/read", alice, json={"up_to_id": "abc"})
    assert_error(r, 422)
    r = await api.post("/notifications/read", alice, json={"everything": True})
    assert_error(r, 422)


@BOTH_BACKENDS
async def test_search_users_and_posts(api: Api) -> None:
    alice = await api.user("searchable_alice")
    await api.patch(f"/users/{alice.id}", alice, json={"display_name": "Wonder Alice"})
    await api.create_post(alice, "I love green tea")
    await api.create_post(alice, "coffee is fine too")
    r = await api.get("/search", alice, params={"q": "searchable", "type": "users"})
    assert [u["id"] for u in r.json()] == [alice.id]
    assert "email" not in r.json()[0]
    r = await api.get("/search", params={"q": "green tea", "type": "posts"})
    assert [p["content"] for p in r.json()] == ["I love green tea"]
    r = await api.get("/search", params={"q": "tea"})  # posts by default
    assert len(r.json()) == 1


async def test_search_treats_like_wildcards_literally(api: Api) -> None:
    alice = await api.user()
    await api.create_post(alice, "save 100% now")
    await api.create_post(alice, "snake_case names")
    await api.create_post(alice, r"a back\slash here")
    await api.create_post(alice, "plain words only")
    for q, expected in (("100%", "save 100% now"), ("snake_case", "snake_case names")):
        r = await api.get("/search", params={"q": q, "type": "posts"})
        assert [p["content"] for p in r.json()] == [expected], q
    r = await api.get("/search", params={"q": "%", "type": "posts"})
    assert all("%" in p["content"] for p in r.json())
    r = await api.get("/search", params={"q": "_", "type": "users"})
    assert r.status_code == 200
    r = await api.get("/search", params={"q": "\\", "type": "posts"})
    assert r.status_code == 200
    assert all("\\" in p["content"] for p in r.json())


async def test_search_input_errors(api: Api) -> None:
    assert_error(await api.get("/search"), 422)
    assert_error(await api.get("/search", params={"q": "   "}), 422)
    assert_error(await api.get("/search", params={"q": "x", "type": "groups"}), 422)
    assert_error(await api.get("/search", params={"q": "x" * 101}), 422)
    assert_error(await api.get("/search", params={"q": "x", "limit": "abc"}), 422)
