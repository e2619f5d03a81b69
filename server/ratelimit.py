"""Rate limits: one token bucket, used per key for logins, sign-ups, refreshes and writes
over REST and WebSocket alike, and per socket for inbound frames. Pure and clock-injected:
tests step time. `RateLimits` names every bucket and why its default is what it is.

Embedded, the buckets live in this process. A fleet shares them in Redis (server/fleet.py),
so N instances do not allow N times the rate; when Redis is away each instance falls back
to its own buckets, so the limits keep holding.
"""

from __future__ import annotations

import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from domain.errors import RateLimited

__all__ = ["MAX_KEYS", "Limiter", "Rate", "RateLimiter", "RateLimits", "TokenBucket"]

Clock = Callable[[], float]

# Bounds the memory one limiter can hold: a bucket is ~100 bytes, so 100k keys ~10 MB. The
# least recently seen key is dropped first; a dropped key merely starts with a full bucket.
MAX_KEYS = 100_000


@dataclass(frozen=True, slots=True)
class Rate:
    """`count` requests per `period_s` seconds: a bucket of `count` tokens that refills
    over the period, so a fresh client may spend the whole budget at once."""

    count: int
    period_s: float

    def __post_init__(self) -> None:
        if self.count < 1 or self.period_s <= 0:
            raise ValueError("a rate needs a count of at least 1 and a positive period")

    @classmethod
    def per_minute(cls, count: int) -> Rate:
        return cls(count, 60.0)

    @classmethod
    def parse(cls, text: str) -> Rate:
        """`25/5m`, `300/3h`, `20/1s`, `10/90s`: a count, a slash, a period (s, m, h, d)."""
        match = _RATE.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"{text!r} is not a rate; write COUNT/PERIOD, e.g. 25/5m")
        count, amount, unit = int(match[1]), int(match[2] or 1), match[3]
        return cls(count, float(amount * _UNITS[unit]))

    def __str__(self) -> str:
        for unit in ("d", "h", "m"):
            if self.period_s % _UNITS[unit] == 0:
                return f"{self.count}/{int(self.period_s // _UNITS[unit])}{unit}"
        return f"{self.count}/{self.period_s:g}s"


_RATE = re.compile(r"(\d+)\s*/\s*(\d*)\s*([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


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

    def full_in(self) -> float:
        """Seconds until the whole burst is available again (RateLimit-Reset)."""
        self._refill()
        return max(0.0, (self._burst - self._tokens) / self._rate)


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
        per_minute: float,
        *,
        burst: int | None = None,
        clock: Clock = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.name = name
        self._rate = per_minute / 60.0
        self._burst = float(burst if burst is not None else max(1, math.floor(per_minute)))
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    @classmethod
    def of(cls, name: str, rate: Rate, *, clock: Clock = time.monotonic) -> RateLimiter:
        """`rate.count` per `rate.period_s`, all of it available at once."""
        return cls(name, rate.count * 60.0 / rate.period_s, burst=rate.count, clock=clock)

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
        raise self.refusal(bucket.retry_after(cost), bucket.full_in())

    def refusal(self, wait: float, full_in: float) -> RateLimited:
        """The 429 of this limiter: retry in `wait` s, the whole budget back in `full_in`."""
        return RateLimited(
            f"too many {self.name} requests; retry in {math.ceil(wait)} s",
            retry_after=round(wait, 3),
            limit=int(self._burst),
            reset=full_in,
        )


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Every bucket, each keyed by what it protects. Defaults (server/settings.py) start
    from Mastodon's published limits; SECURITY.md lists them with why."""

    # Per client IP: logins (and password changes). Argon2 makes each attempt cost ~50 ms
    # of CPU, so this protects the server's cores as much as the accounts.
    login_ip: Limiter
    # Per account (the login as typed, case-folded): guessing one account's password from
    # many IPs is held to the same pace as from one.
    login_account: Limiter
    # Per client IP: sign-ups, the cheapest way to get a fresh set of per-user budgets.
    register_ip: Limiter
    # Per login (refresh-token family), not per IP: many users behind one NAT each keep
    # their own budget, and a client in a refresh loop only stops itself.
    refresh_session: Limiter
    # Per user: every write (post, like, comment, follow, block, upload, profile change),
    # over REST and WebSocket alike: a write costs the same budget on either path.
    writes: Limiter
    # Per user, on top of `writes`: posts (each fans out to every follower), likes and
    # comments, uploads (each decodes an image).
    posts: Limiter
    interactions: Limiter
    uploads: Limiter

    @classmethod
    def local(cls, rates: Mapping[str, Rate], *, clock: Clock = time.monotonic) -> RateLimits:
        """This process's own buckets, one per field, `rates` giving each its rate."""
        return cls(**local_limiters(rates, clock=clock))


def local_limiters(
    rates: Mapping[str, Rate], *, clock: Clock = time.monotonic
) -> dict[str, RateLimiter]:
    """A limiter per bucket of `RateLimits` (a fleet's fall back on these too). Its name is
    what its 429 message says is too many."""
    names = {
        "login_ip": "login",
        "login_account": "login",
        "register_ip": "registration",
        "refresh_session": "refresh",
        "writes": "write",
        "posts": "post",
        "interactions": "like or comment",
        "uploads": "upload",
    }
    return {field: RateLimiter.of(names[field], rates[field], clock=clock) for field in names}
