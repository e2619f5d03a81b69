"""Rate limits: one token bucket, used per key for REST and WebSocket writes and logins,
and per socket for inbound frames. Pure and clock-injected: tests step time.

Embedded, the buckets live in this process. A fleet shares them in Redis (server/fleet.py),
so N instances do not allow N times the rate; when Redis is away each instance falls back
to its own buckets, so the limits keep holding.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from domain.errors import RateLimited

__all__ = ["MAX_KEYS", "Limiter", "RateLimiter", "RateLimits", "TokenBucket"]

Clock = Callable[[], float]

# Bounds the memory one limiter can hold: a bucket is ~100 bytes, so 100k keys ~10 MB. The
# least recently seen key is dropped first; a dropped key merely starts with a full bucket.
MAX_KEYS = 100_000


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved; a request spends `cost` tokens."""

    __slots__ = ("_burst", "_clock", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: float, *, clock: Clock = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._tokens = burst
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        # max(): a clock that steps back must not drain the bucket.
        elapsed = max(0.0, now - self._stamp)
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        self._stamp = now

    def allow(self, cost: float = 1.0) -> bool:
        """Take `cost` tokens if there are that many; False (nothing taken) otherwise."""
        self._refill()
        # The epsilon absorbs float rounding: 0.05 s at 20/s must earn a whole token.
        if self._tokens + 1e-9 >= cost:
            self._tokens -= cost
            return True
        return False

    def retry_after(self, cost: float = 1.0) -> float:
        """Seconds until `cost` tokens are available (0 when they are now)."""
        self._refill()
        return max(0.0, (cost - self._tokens) / self._rate)


class Limiter(Protocol):
    """A keyed rate limit: in this process, or shared by a fleet in Redis."""

    name: str

    async def hit(self, key: str, cost: float = 1.0) -> None:
        """Spend `cost` of `key`'s budget or raise RateLimited(retry_after)."""
        ...


class RateLimiter:
    """A token bucket per key, in this process: `per_minute` tokens a minute, bursts up to
    `burst` (default: the per-minute amount, so a fresh client may spend a whole minute's
    budget at once)."""

    def __init__(
        self,
        name: str,
        per_minute: int,
        *,
        burst: int | None = None,
        clock: Clock = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.name = name
        self._rate = per_minute / 60.0
        self._burst = float(burst if burst is not None else per_minute)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    async def hit(self, key: str, cost: float = 1.0) -> None:
        self.hit_now(key, cost)

    @property
    def rate_per_s(self) -> float:
        return self._rate

    @property
    def burst(self) -> float:
        return self._burst

    def hit_now(self, key: str, cost: float = 1.0) -> None:
        """Spend `cost` tokens of `key`'s bucket or raise RateLimited(retry_after)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self._rate, self._burst, clock=self._clock)
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        if bucket.allow(cost):
            return
        wait = bucket.retry_after(cost)
        raise RateLimited(
            f"too many {self.name} requests; retry in {math.ceil(wait)} s",
            retry_after=round(wait, 3),
        )


@dataclass(frozen=True, slots=True)
class RateLimits:
    # Per client IP: login, register, refresh. Argon2 makes each attempt cost ~50-100 ms
    # of CPU, so this limit protects both the accounts and the server's cores.
    auth: Limiter
    # Per user: every write (post, like, comment, follow, block, upload, profile change),
    # over REST and WebSocket alike: a write costs the same budget on either path.
    writes: Limiter

    @classmethod
    def of(cls, auth_per_minute: int, writes_per_minute: int) -> RateLimits:
        """This process's own buckets."""
        auth, writes = local_limiters(auth_per_minute, writes_per_minute)
        return cls(auth=auth, writes=writes)


def local_limiters(auth_per_minute: int, writes_per_minute: int) -> tuple[RateLimiter, RateLimiter]:
    """The auth and write limiters of one process (a fleet's fall back on them too)."""
    return RateLimiter("login", auth_per_minute), RateLimiter("write", writes_per_minute)
