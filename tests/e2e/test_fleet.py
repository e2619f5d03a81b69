"""A fleet on loopback: 2 `plaza serve` + 2 `plaza worker` on one PostgreSQL and Redis.

Writes made through one instance reach sockets held by the other, and a socket that moves
from one instance to the other resumes exactly."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.clients import Ws, make_user
from tests.support.fleet import Fleet, base_env, running_fleet
from tests.support.live_server import free_port, running_server

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def fleet(tmp_path: Path, postgres_url: str, redis_url: str) -> Iterator[Fleet]:
    with running_fleet(tmp_path, postgres_url, redis_url) as running:
        yield running


def types(pushes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(p["channel"], p["event"]["type"]) for p in pushes]


async def test_a_socket_on_one_instance_sees_writes_made_through_the_other(
    fleet: Fleet,
) -> None:
    a, b = fleet.servers
    async with httpx.AsyncClient(timeout=10) as http:
        alice = await make_user(http, a.api, "alice")
        bob = await make_user(http, b.api, "bob")
        async with await Ws.connect(a.ws_url, alice.token) as ws:
            await ws.ok("subscribe", channel="feed")
            await ws.ok("subscribe", channel="notifications")

            r = await http.post(f"{b.api}/posts", json={"content": "via b"}, headers=alice.auth)
            post = r.json()
            created = await ws.push(timeout=10)
            assert types([created]) == [("feed", "post.created")]
            assert created["event"]["data"]["id"] == post["id"]

            await ws.ok("subscribe", channel=f"post:{post['id']}")
            r = await http.post(f"{b.api}/posts/{post['id']}/likes", headers=bob.auth)
            assert r.status_code == 200
            r = await http.post(
                f"{b.api}/posts/{post['id']}/comments", json={"content": "hi"}, headers=bob.auth
            )
            assert r.status_code == 201
            pushes = await ws.pushes_until(5, timeout=10)
            # The unread count follows each batch of new notifications: twice here, or once
            # (2) when the worker took the like and the comment in one batch.
            with contextlib.suppress(TimeoutError):
                pushes.append(await ws.push(timeout=1.0))
            unread = [p["event"]["data"] for p in pushes if p["event"]["type"].endswith("unread")]
            assert unread in ([{"count": 1}, {"count": 2}], [{"count": 2}]), unread
            assert sorted(t for t in types(pushes) if not t[1].endswith("unread")) == sorted(
                [
                    (f"post:{post['id']}", "post.liked"),
                    (f"post:{post['id']}", "comment.created"),
                    ("notifications", "notification.created"),
                    ("notifications", "notification.created"),
                ]
            )
            on_post = [p for p in pushes if p["channel"].startswith("post:")]
            assert [p["event"]["type"] for p in on_post] == ["post.liked", "comment.created"]
            assert on_post[0]["event"]["data"] == {
                "post_id": post["id"],
                "user_id": bob.id,
                "like_count": 1,
            }
            await ws.no_push(0.5)


async def test_a_socket_that_moves_to_the_other_instance_resumes_exactly(fleet: Fleet) -> None:
    a, b = fleet.servers
    async with httpx.AsyncClient(timeout=10) as http:
        author = await make_user(http, a.api, "author")
        fans = [await make_user(http, a.api, "fan") for _ in range(3)]
        r = await http.post(f"{a.api}/posts", json={"content": "liked"}, headers=author.auth)
        post = r.json()
        channel = f"post:{post['id']}"

        async with await Ws.connect(a.ws_url, author.token) as ws:
            sub = await ws.ok("subscribe", channel=channel)
            await http.post(f"{b.api}/posts/{post['id']}/likes", headers=fans[0].auth)
            first = await ws.push(timeout=10)
            since = {"offset": first["offset"], "epoch": first["epoch"]}
            assert since["epoch"] == sub["epoch"]

        # Offline: more happens to the post, through both instances.
        for fan in fans[1:]:
            await http.post(f"{b.api}/posts/{post['id']}/likes", headers=fan.auth)
        await http.delete(f"{a.api}/posts/{post['id']}/likes", headers=fans[0].auth)
        await http.post(
            f"{a.api}/posts/{post['id']}/comments", json={"content": "c"}, headers=fans[1].auth
        )
        # Wait until the last of those has been published (a fresh subscriber sees it).
        # Polled within a socket's frame budget (20 a second after a burst of 50): a busy
        # worker can take longer than a burst of polls, and the probe is a client too.
        async with await Ws.connect(b.ws_url, author.token) as probe:
            deadline = time.monotonic() + 15.0
            while True:
                current = await probe.ok("subscribe", channel=channel)
                if int(current["offset"]) >= int(first["offset"]) + 4:
                    break
                assert time.monotonic() < deadline, current
                await probe.ok("unsubscribe", channel=channel)
                await asyncio.sleep(0.2)

        async with await Ws.connect(b.ws_url, author.token) as ws:
            resumed = await ws.ok("subscribe", channel=channel, since=since)
            assert resumed["recovered"] is True
            events = [e["event"] for e in resumed["events"]]
            assert [e["type"] for e in events] == [
                "post.liked",
                "post.liked",
                "post.unliked",
                "comment.created",
            ]
            assert [e["data"].get("like_count") for e in events[:3]] == [2, 3, 2]
            offsets = [int(e["offset"]) for e in resumed["events"]]
            assert offsets == list(range(int(first["offset"]) + 1, int(first["offset"]) + 5))
            # And live after that, with no gap and no duplicate.
            await http.post(f"{a.api}/posts/{post['id']}/likes", headers=fans[0].auth)
            live = await ws.push(timeout=10)
            assert int(live["offset"]) == offsets[-1] + 1
            assert live["event"]["type"] == "post.liked"


def test_a_second_embedded_server_on_one_database_refuses_to_start(
    tmp_path: Path, postgres_url: str
) -> None:
    env = base_env(postgres_url, None, "")
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "migrate"], cwd=tmp_path, env=env, check=False
    )
    assert done.returncode == 0
    with running_server(tmp_path, {"PLAZA_DATABASE_URL": postgres_url, **_secret(env)}):
        second = subprocess.run(
            [sys.executable, "-m", "server.cli", "serve", "--port", str(free_port())],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert second.returncode == 2
    err = second.stderr.decode().strip().splitlines()
    assert err == [err[-1]] and "PLAZA_REDIS_URL" in err[-1], second.stderr.decode()
    assert "another plaza serve already serves this database" in err[-1]


def _secret(env: dict[str, str]) -> dict[str, str]:
    return {"PLAZA_SECRET_KEY": env["PLAZA_SECRET_KEY"]}


def test_sigterm_hands_a_workers_partitions_back_at_once(fleet: Fleet) -> None:
    first, second = fleet.workers
    started = time.monotonic()
    assert first.stop(timeout=20) == 0  # SIGTERM: finish what it holds, hand it back
    stopped = time.monotonic() - started
    assert stopped < 15, f"took {stopped:.1f} s to stop"
    assert "stopped" in first.log()
    # The survivor takes every partition well before a dead worker's leases would expire
    # (10 s): they were released, not abandoned.
    everything = "consumes partitions " + str(list(range(16)))
    deadline = time.monotonic() + 5
    while not second.log().rstrip().splitlines()[-1].endswith(everything):
        assert time.monotonic() < deadline, second.log()
        time.sleep(0.1)
