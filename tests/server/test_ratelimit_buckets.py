"""The one token bucket (REST and WebSocket limits) and the invalid-frame counter, on a
fake clock."""

from __future__ import annotations

import pytest

from server.ratelimit import TokenBucket
from server.ws.session import INBOUND_BURST, INBOUND_RATE, InvalidFrameCounter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refused() -> None:
    clock = FakeClock()
    bucket = TokenBucket(INBOUND_RATE, INBOUND_BURST, clock=clock)  # 20/s, burst 50
    assert all(bucket.allow() for _ in range(50))
    assert not bucket.allow()
    assert bucket.retry_after() == pytest.approx(0.05)


def test_refills_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=20, burst=50, clock=clock)
    for _ in range(50):
        bucket.allow()
    clock.now += 0.5  # ten tokens
    assert sum(bucket.allow() for _ in range(20)) == 10
    clock.now += 0.049
    assert not bucket.allow()
    clock.now += 0.002
    assert bucket.allow()


def test_saved_tokens_are_capped_at_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=20, burst=50, clock=clock)
    clock.now += 3600
    assert sum(bucket.allow() for _ in range(100)) == 50


def test_steady_rate_is_sustained() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=20, burst=50, clock=clock)
    for _ in range(50):
        bucket.allow()
    allowed = 0
    for _ in range(200):  # 10 s at 20 frames/s
        clock.now += 0.05
        allowed += bucket.allow()
    assert allowed == 200


def test_a_clock_stepping_back_does_not_drain_or_mint() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=20, burst=50, clock=clock)
    for _ in range(40):
        bucket.allow()
    clock.now -= 100
    assert sum(bucket.allow() for _ in range(20)) == 10


def test_refused_frames_cost_nothing() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1, burst=1, clock=clock)
    assert bucket.allow()
    assert not bucket.allow()
    assert not bucket.allow()
    clock.now += 1
    assert bucket.allow()


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1)
    with pytest.raises(ValueError):
        TokenBucket(rate=1, burst=0.5)


def test_more_than_ten_invalid_frames_in_a_minute_is_a_violation() -> None:
    clock = FakeClock()
    counter = InvalidFrameCounter(clock=clock)
    assert not any(counter.record() for _ in range(10))
    assert counter.record()


def test_invalid_frames_spread_over_time_are_tolerated() -> None:
    clock = FakeClock()
    counter = InvalidFrameCounter(clock=clock)
    for _ in range(100):
        assert not counter.record()
        clock.now += 6.1  # under 10 per rolling minute


def test_old_invalid_frames_leave_the_window() -> None:
    clock = FakeClock()
    counter = InvalidFrameCounter(clock=clock)
    for _ in range(10):
        counter.record()
    clock.now += 60
    assert not counter.record()  # the ten are exactly a minute old: out
    clock.now += 1
    assert not any(counter.record() for _ in range(9))
    assert counter.record()  # eleven within the last minute
