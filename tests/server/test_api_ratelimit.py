"""Token buckets: the limiter itself on a fake clock, and the 429s it causes over REST."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_world import PASSWORD, assert_error, make_settings, running_api
from test_api_media import png

from domain.errors import RateLimited
from server.proxies import parse_trusted_proxies
from server.ratelimit import Rate, RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_refills() -> None:
    clock = FakeClock()
    limiter = RateLimiter("login", 6, clock=clock)  # 6 a minute: one every 10 s
    for _ in range(6):
        limiter.hit_now("1.2.3.4")
    with pytest.raises(RateLimited) as caught:
        limiter.hit_now("1.2.3.4")
    assert caught.value.retry_after == pytest.approx(10.0)
    limiter.hit_now("5.6.7.8")  # other keys have their own bucket
    clock.now += 10
    limiter.hit_now("1.2.3.4")
    with pytest.raises(RateLimited):
        limiter.hit_now("1.2.3.4")
    clock.now += 3600  # refills cap at the burst
    for _ in range(6):
        limiter.hit_now("1.2.3.4")
    with pytest.raises(RateLimited):
        limiter.hit_now("1.2.3.4")


def test_bucket_memory_is_bounded() -> None:
    limiter = RateLimiter("write", 1, clock=FakeClock(), max_keys=3)
    for key in "abcd":
        limiter.hit_now(key)
    # "a" was the least recently seen and got evicted: it starts with a fresh bucket.
    limiter.hit_now("a")
    with pytest.raises(RateLimited):
        limiter.hit_now("d")


async def test_login_attempts_are_limited_per_ip(tmp_path: Path) -> None:
    # The variable deployments already set keeps its meaning: N logins a minute per IP
    # (and N sign-ups, counted apart now).
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", rate_auth_per_ip_per_minute=3
    )
    async with running_api(settings) as api:
        body = {"username": "rita", "email": "rita@example.com", "password": PASSWORD}
        assert (await api.post("/auth/register", json=body)).status_code == 201
        for _ in range(2):
            r = await api.post("/auth/login", json={"login": "rita", "password": "wrong pass"})
            assert_error(r, 401)
        r = await api.post("/auth/login", json={"login": "rita", "password": PASSWORD})
        assert r.status_code == 200
        r = await api.post("/auth/login", json={"login": "rita", "password": PASSWORD})
        assert_error(r, 429, "rate_limited")
        assert int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"]["details"]["retry_after"] > 0
        # The budget: 3 a minute, none left, all of it back in a minute.
        assert r.headers["RateLimit-Limit"] == "3"
        assert r.headers["RateLimit-Remaining"] == "0"
        assert 1 <= int(r.headers["RateLimit-Reset"]) <= 60


def _from(ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip}


async def test_logins_are_limited_per_account_whatever_the_ip(tmp_path: Path) -> None:
    """Guessing one account's password from many addresses is held to one pace; other
    accounts are not affected. The addresses come from a trusted proxy's header."""
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        rate_login_per_account=Rate(3, 3600),
        trusted_proxies=parse_trusted_proxies("10.0.0.1"),  # the test transport's peer
    )
    async with running_api(settings) as api:
        rita, sam = await api.user(), await api.user()  # one login each
        for n in range(2):
            wrong = {"login": rita.username.upper(), "password": "wrong pass"}
            assert_error(
                await api.post("/auth/login", json=wrong, headers=_from(f"203.0.113.{n}")), 401
            )
        r = await api.post(
            "/auth/login",
            json={"login": rita.username, "password": PASSWORD},
            headers=_from("198.51.100.7"),
        )
        assert_error(r, 429, "rate_limited")
        assert r.headers["RateLimit-Limit"] == "3"
        assert 3500 <= int(r.headers["RateLimit-Reset"]) <= 3600
        r = await api.post("/auth/login", json={"login": sam.username, "password": PASSWORD})
        assert r.status_code == 200


async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", rate_register_per_ip=Rate(1, 1800)
    )
    async with running_api(settings) as api:
        # No trusted proxy: every request comes from the transport's peer, whatever the
        # header claims, so a second sign-up is refused.
        assert (
            await api.post("/auth/register", json=_signup("ann"), headers=_from("1.1.1.1"))
        ).status_code == 201
        r = await api.post("/auth/register", json=_signup("ben"), headers=_from("2.2.2.2"))
        assert_error(r, 429, "rate_limited")
        assert "registration" in r.json()["error"]["message"]
    trusted = make_settings(
        tmp_path / "t",
        f"sqlite:///{tmp_path / 'trusted.sqlite'}",
        rate_register_per_ip=Rate(1, 1800),
        trusted_proxies=parse_trusted_proxies("10.0.0.0/8"),
    )
    async with running_api(trusted) as api:
        for n, name in enumerate(("cat", "dan")):
            r = await api.post("/auth/register", json=_signup(name), headers=_from(f"192.0.2.{n}"))
            assert r.status_code == 201
        # A client's own claim left of the proxy's entry is not believed: the right-most
        # untrusted hop (192.0.2.1, seen already) is the client.
        r = await api.post(
            "/auth/register", json=_signup("eve"), headers=_from("192.0.2.99, 192.0.2.1")
        )
        assert_error(r, 429, "rate_limited")


def _signup(name: str) -> dict[str, str]:
    return {"username": name, "email": f"{name}@example.com", "password": PASSWORD}


async def test_refresh_is_limited_per_login_not_per_ip(tmp_path: Path) -> None:
    """Many users behind one NAT each refresh on their own budget; a client that refreshes
    in a loop stops only itself."""
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        rate_refresh_per_session=Rate(2, 3600),
        rate_auth_per_ip_per_minute=100,
    )
    async with running_api(settings) as api:
        looping, other = await api.user(), await api.user()
        refresh = looping.refresh_token
        for _ in range(2):
            r = await api.post("/auth/refresh", json={"refresh_token": refresh})
            assert r.status_code == 200, r.text
            refresh = r.json()["refresh_token"]
        r = await api.post("/auth/refresh", json={"refresh_token": refresh})
        assert_error(r, 429, "rate_limited")
        assert "refresh" in r.json()["error"]["message"]
        # Another login from the same address is unaffected.
        r = await api.post("/auth/refresh", json={"refresh_token": other.refresh_token})
        assert r.status_code == 200
        # A bad token is refused as before, not counted against anyone.
        r = await api.post("/auth/refresh", json={"refresh_token": "not-a-token"})
        assert_error(r, 401, "invalid_token")


async def test_posts_likes_comments_and_uploads_have_their_own_buckets(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        rate_posts_per_user=Rate(2, 3 * 3600),
        rate_interactions_per_user=Rate(3, 3600),
        rate_uploads_per_user=Rate(1, 1800),
    )
    async with running_api(settings) as api:
        alice = await api.user()
        post_ids = [(await api.create_post(alice, f"post {n}"))["id"] for n in range(2)]
        r = await api.post("/posts", alice, json={"content": "a third"})
        assert_error(r, 429, "rate_limited")
        assert "post" in r.json()["error"]["message"]
        assert r.headers["RateLimit-Limit"] == "2"
        # Posting is spent; liking and commenting are not.
        assert (await api.post(f"/posts/{post_ids[0]}/likes", alice)).status_code == 200
        assert (await api.delete(f"/posts/{post_ids[0]}/likes", alice)).status_code == 200
        comment = {"content": "nice"}
        assert (
            await api.post(f"/posts/{post_ids[1]}/comments", alice, json=comment)
        ).status_code == 201
        r = await api.post(f"/posts/{post_ids[1]}/likes", alice)
        assert_error(r, 429, "rate_limited")
        assert "like or comment" in r.json()["error"]["message"]
        # Following is neither.
        bob = await api.user()
        assert (await api.post(f"/users/{bob.id}/follow", alice)).status_code == 200
        upload = {"file": ("pic.png", png(), "image/png")}
        assert (await api.post("/media", alice, files=upload)).status_code == 201
        r = await api.post("/media", alice, files=upload)
        assert_error(r, 429, "rate_limited")
        assert "upload" in r.json()["error"]["message"]


async def test_writes_are_limited_per_user(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", rate_writes_per_user_per_minute=2
    )
    async with running_api(settings) as api:
        alice, bob = await api.user(), await api.user()
        await api.create_post(alice, "one")
        await api.create_post(alice, "two")
        r = await api.post("/posts", alice, json={"content": "three"})
        assert_error(r, 429, "rate_limited")
        assert r.headers["Retry-After"] == "30"
        # Reads are not writes, and bob has his own budget.
        assert (await api.get("/feed", alice)).status_code == 200
        await api.create_post(bob, "bob's first")
