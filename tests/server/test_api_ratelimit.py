"""Token buckets: the limiter itself on a fake clock, and the 429s it causes over REST."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_world import PASSWORD, assert_error, make_settings, running_api

from domain.errors import RateLimited
from server.ratelimit import RateLimiter


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
        assert_error(r, 429, "rate_limited")
        assert int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"]["details"]["retry_after"] > 0


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
