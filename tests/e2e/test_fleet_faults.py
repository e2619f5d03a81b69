"""Faults in a running fleet, with real processes: a worker killed with SIGKILL, a private
Redis restarted empty or frozen, a poison event. Nothing committed is lost or doubled."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.clients import User, Ws, make_user
from tests.support.fleet import Fleet, running_fleet
from tests.support.redis_server import PrivateRedis

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def fleet(tmp_path: Path, postgres_url: str, private_redis: PrivateRedis) -> Iterator[Fleet]:
    with running_fleet(tmp_path, postgres_url, private_redis.url) as running:
        yield running


async def open_entries(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        value = await conn.fetchval("SELECT COUNT(*) FROM outbox WHERE completed_at IS NULL")
        return int(value)
    finally:
        await conn.close()


async def settled(fleet: Fleet, timeout: float = 60.0) -> None:
    """Every committed event processed by every consumer kind."""
    database_url = fleet.env["PLAZA_DATABASE_URL"]
    deadline = time.monotonic() + timeout
    while await open_entries(database_url):
        if time.monotonic() > deadline:
            raise AssertionError(f"outbox not drained:\n{fleet.logs()[-4000:]}")
        await asyncio.sleep(0.2)


async def collect(ws: Ws, seconds: float, expect: int | None = None) -> list[dict[str, Any]]:
    """Every push that arrives within `seconds`; with `expect`, stop a second after that
    many have arrived (the second catches a duplicate)."""
    got = list(ws.pushes)
    ws.pushes.clear()
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frame = await ws.recv(left)
        except TimeoutError:
            break
        if "push" in frame:
            got.append(frame)
            if expect is not None and len(got) == expect:
                deadline = min(deadline, time.monotonic() + 1.0)
    return got


async def social_graph(http: httpx.AsyncClient, fleet: Fleet, fans: int) -> tuple[User, list[User]]:
    a, b = fleet.servers
    author = await make_user(http, a.api, "author")
    followers = [await make_user(http, b.api, "fan") for _ in range(fans)]
    for fan in followers:
        r = await http.post(f"{a.api}/users/{author.id}/follow", headers=fan.auth)
        assert r.status_code == 200
    return author, followers


async def test_a_worker_killed_mid_stream_loses_and_doubles_nothing(fleet: Fleet) -> None:
    a, b = fleet.servers
    async with httpx.AsyncClient(timeout=20) as http:
        author, fans = await social_graph(http, fleet, 4)
        sockets = []
        for n, fan in enumerate(fans):
            ws = await Ws.connect((a if n % 2 else b).ws_url, fan.token)
            await ws.ok("subscribe", channel="feed")
            sockets.append(ws)
        posts: list[str] = []
        likes = 0
        for n in range(40):
            server = (a, b)[n % 2]
            r = await http.post(
                f"{server.api}/posts", json={"content": f"p{n}"}, headers=author.auth
            )
            assert r.status_code == 201
            posts.append(r.json()["id"])
            fan = fans[n % len(fans)]
            r = await http.post(f"{server.api}/posts/{posts[-1]}/likes", headers=fan.auth)
            assert r.status_code == 200
            likes += 1
            if n == 12:
                fleet.workers[0].kill9()  # whatever it held is taken over
            if n == 24:
                # A fresh worker joins and the other original dies too: whichever of the
                # two was the relay's leader has been killed by now.
                fleet.add_worker()
                fleet.workers[1].kill9()
        await settled(fleet)
        for ws in sockets:
            pushes = await collect(ws, 2.0)
            created = [p["event"]["data"]["id"] for p in pushes if p["channel"] == "feed"]
            assert Counter(created) == Counter(posts), "every post once on every feed"
            assert len({p["offset"] for p in pushes}) == len(pushes)
            await ws.close()
        for fan in fans:
            r = await http.get(f"{a.api}/feed", headers=fan.auth, params={"limit": 40})
            assert [p["id"] for p in r.json()] == list(reversed(posts))
        notes = await all_notifications(http, a.api, author)
        likes_seen = [n for n in notes if n["kind"] == "like"]
        assert len(likes_seen) == likes and len({n["id"] for n in likes_seen}) == likes
        assert len([n for n in notes if n["kind"] == "follow"]) == len(fans)


async def all_notifications(http: httpx.AsyncClient, api: str, user: User) -> list[Any]:
    items: list[Any] = []
    params: dict[str, str] = {"limit": "40"}
    while True:
        r = await http.get(f"{api}/users/{user.id}/notifications", headers=user.auth, params=params)
        page = r.json()
        if not page:
            return items
        items += page
        params = {"limit": "40", "max_id": page[-1]["id"]}


async def test_redis_restarted_empty_loses_nothing_committed(
    fleet: Fleet, private_redis: PrivateRedis
) -> None:
    a, b = fleet.servers
    async with httpx.AsyncClient(timeout=20) as http:
        author, fans = await social_graph(http, fleet, 2)
        ws = await Ws.connect(a.ws_url, fans[0].token)
        await ws.ok("subscribe", channel="feed")
        posts: list[str] = []
        for n in range(30):
            if n == 10:
                await settled(fleet)
                first = await collect(ws, 1.0)
                last = first[-1]
                private_redis.restart_empty()
            server = (a, b)[n % 2]
            r = await http.post(
                f"{server.api}/posts", json={"content": f"p{n}"}, headers=author.auth
            )
            # Writes commit whatever Redis does: the outbox is in PostgreSQL.
            assert r.status_code == 201, r.text
            posts.append(r.json()["id"])
        await settled(fleet)
        # The socket's history is gone with Redis: it is told to resume (4000) ...
        assert await ws.closed_with(timeout=30) == 4000
        # ... and the resume says so: not recovered, refetch over REST.
        async with await Ws.connect(b.ws_url, fans[0].token) as again:
            since = {"offset": last["offset"], "epoch": last["epoch"]}
            resumed = await again.ok("subscribe", channel="feed", since=since)
            assert resumed["recovered"] is False
            # Live delivery resumes by itself.
            r = await http.post(f"{a.api}/posts", json={"content": "after"}, headers=author.auth)
            push = await again.push(timeout=20)
            assert push["event"]["data"]["id"] == r.json()["id"]
        for fan in fans:
            r = await http.get(f"{b.api}/feed", headers=fan.auth, params={"limit": 40})
            assert [p["id"] for p in r.json()][1:] == list(reversed(posts))
        notes = await all_notifications(http, a.api, author)
        assert len([n for n in notes if n["kind"] == "follow"]) == 2


async def test_a_frozen_redis_bounds_every_call_and_everything_flows_after(
    fleet: Fleet, private_redis: PrivateRedis
) -> None:
    a, b = fleet.servers
    async with httpx.AsyncClient(timeout=30) as http:
        author, fans = await social_graph(http, fleet, 1)
        ws = await Ws.connect(b.ws_url, fans[0].token)
        await ws.ok("subscribe", channel="feed")
        await settled(fleet)
        private_redis.freeze()
        try:
            posts = []
            for n in range(5):
                started = time.monotonic()
                r = await http.post(
                    f"{a.api}/posts", json={"content": f"frozen {n}"}, headers=author.auth
                )
                assert r.status_code == 201, r.text  # the write commits
                assert time.monotonic() - started < 5  # and does not wait on Redis
                posts.append(r.json()["id"])
            # A call that needs Redis answers within its deadline instead of hanging.
            started = time.monotonic()
            async with await Ws.connect(a.ws_url, author.token) as probe:
                reply = await probe.call("subscribe", timeout=20, channel="public")
            assert time.monotonic() - started < 10
            assert reply["ok"] is False and reply["error"]["code"] == "unavailable", reply
            assert reply["error"]["retryable"] is True
        finally:
            private_redis.thaw()
        await settled(fleet)
        # The instance notices Redis is back within its reconnect backoff (up to ~5 s),
        # then catches its channels up from history.
        pushes = await collect(ws, 20.0, expect=len(posts))
        got = [p["event"]["data"]["id"] for p in pushes if p["channel"] == "feed"]
        # Everything written during the freeze arrives once, an author's posts in order.
        assert got == posts, (got, posts)
        assert [int(p["offset"]) for p in pushes] == list(range(1, len(posts) + 1))
        await ws.close()


async def test_a_poison_event_ends_in_the_dead_letters_while_the_rest_flow(
    fleet: Fleet, tmp_path: Path
) -> None:
    a, b = fleet.servers
    database_url = fleet.env["PLAZA_DATABASE_URL"]
    async with httpx.AsyncClient(timeout=20) as http:
        author, fans = await social_graph(http, fleet, 1)
        ws = await Ws.connect(a.ws_url, fans[0].token)
        await ws.ok("subscribe", channel="feed")
        conn = await asyncpg.connect(database_url)
        try:
            # An event this version cannot read (written by a newer one, or corrupted).
            await conn.execute(
                "INSERT INTO outbox (id, event, created_at) VALUES ($1, $2, now())",
                42,
                b'{"type":"from.the.future","event_id":42}',
            )
            await conn.execute("SELECT pg_notify('plaza_outbox', '')")
        finally:
            await conn.close()
        r = await http.post(f"{b.api}/posts", json={"content": "after"}, headers=author.auth)
        push = await ws.push(timeout=20)
        assert push["event"]["data"]["id"] == r.json()["id"]  # the rest flows
        await settled(fleet)
        listed = subprocess.run(
            [sys.executable, "-m", "server.cli", "dead-letters", "list"],
            cwd=tmp_path,
            env=fleet.env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert listed.returncode == 0, listed.stderr.decode()
        rows = [line for line in listed.stdout.decode().splitlines() if line.startswith("42 ")]
        assert sorted(line.split()[1] for line in rows) == ["feed", "live", "notifications"]
        assert all("undecodable" in line for line in rows)
        replayed = subprocess.run(
            [sys.executable, "-m", "server.cli", "dead-letters", "replay", "42", "--kind", "live"],
            cwd=tmp_path,
            env=fleet.env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert replayed.returncode == 0, replayed.stderr.decode()
        assert "replayed 1 dead letter" in replayed.stdout.decode()
        await ws.close()
