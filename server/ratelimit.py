"""In-process token buckets: auth attempts per client IP, writes per user.

In-process on purpose: a limit that lets a fleet of N processes accept N times the rate is
still a hard cap on abuse (guessing passwords, flooding posts), costs no network round
trip on every write and keeps working when Redis is down. A global limit would live in
Redis; nothing here needs one yet.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from domain.errors import RateLimited

Clock = Callable[[], float]

# Bounds the memory one limiter can hold: a bucket is ~100 bytes, so 100k keys ~10 MB. The
# least recently seen key is dropped first; a dropped key merely starts with a full bucket.
MAX_KEYS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """`per_minute` tokens per minute per key, with bursts up to `burst` (default: the
    per-minute amount, so a fresh client may spend a whole minute's budget at once)."""

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
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def hit(self, key: str, cost: float = 1.0) -> None:
        """Spend `cost` tokens of `key`'s bucket or raise RateLimited(retry_after)."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self._burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.stamp) * self._rate)
            bucket.stamp = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return
        wait = (cost - bucket.tokens) / self._rate
        raise RateLimited(
            f"too many {self.name} requests; retry in {math.ceil(wait)} s",
            retry_after=round(wait, 3),
        )

    def reset(self) -> None:
        self._buckets.clear()


@dataclass(frozen=True, slots=True)
class RateLimits:
    # Per client IP: login, register, refresh. Argon2 makes each attempt cost ~50-100 ms
    # of CPU, so this limit protects both the accounts and the server's cores.
    auth: RateLimiter
    # Per user: every write (post, like, comment, follow, block, upload, profile change).
    writes: RateLimiter

    @classmethod
    def of(cls, auth_per_minute: int, writes_per_minute: int) -> RateLimits:
        return cls(
            auth=RateLimiter("login", auth_per_minute),
            writes=RateLimiter("write", writes_per_minute),
        )
