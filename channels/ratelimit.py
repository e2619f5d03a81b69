"""Per-socket limits on inbound frames: a token bucket and an invalid-frame counter.

Pure and clock-injectable, so tests step time instead of sleeping.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = [
    "INBOUND_BURST",
    "INBOUND_RATE",
    "INVALID_FRAMES_LIMIT",
    "INVALID_FRAMES_WINDOW_S",
    "InvalidFrameCounter",
    "TokenBucket",
]

Clock = Callable[[], float]

# 20 frames/s is far above what a person tapping a screen sends, yet a client flooding the
# socket is cut off within seconds; a burst of 50 lets a reconnecting client resubscribe
# to its channels and re-send queued actions at once.
INBOUND_RATE = 20.0
INBOUND_BURST = 50.0
# A well-behaved client sends no invalid frame; a few come from bugs, so the socket stays
# open for them. More than 10 in a minute is a broken or hostile client: close with 4500.
INVALID_FRAMES_LIMIT = 10
INVALID_FRAMES_WINDOW_S = 60.0


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved; one token per frame."""

    __slots__ = ("_burst", "_clock", "_rate", "_stamp", "_tokens")

    def __init__(
        self,
        rate: float = INBOUND_RATE,
        burst: float = INBOUND_BURST,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
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


class InvalidFrameCounter:
    """Counts invalid frames in a sliding window; more than `limit` is a violation."""

    __slots__ = ("_clock", "_limit", "_stamps", "_window")

    def __init__(
        self,
        limit: int = INVALID_FRAMES_LIMIT,
        window: float = INVALID_FRAMES_WINDOW_S,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        # Never more than limit + 1 stamps: memory per socket stays constant.
        self._stamps: deque[float] = deque(maxlen=limit + 1)

    def record(self) -> bool:
        """Count one invalid frame now; True when that makes more than `limit` in the window."""
        now = self._clock()
        self._stamps.append(now)
        while self._stamps and self._stamps[0] <= now - self._window:
            self._stamps.popleft()
        return len(self._stamps) > self._limit
