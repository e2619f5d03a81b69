"""Reconnect delays: exponential backoff with full jitter, and the close-code policy."""

from __future__ import annotations

import random
from collections.abc import Callable
from enum import Enum

__all__ = ["Backoff", "CloseAction", "close_action"]

# 0.5 s first: a server restarting behind a load balancer is usually back within a second,
# and a few hundred ms is invisible to a person. Doubling to a 30 s cap keeps a fleet of
# clients from hammering a server that stays down, while a user never waits more than
# ~30 s after it comes back.
BASE_DELAY = 0.5
MAX_DELAY = 30.0
# 4008 (rate limited) and 4029 (too many sockets) say "later", not "now": never come back
# sooner than this, or the reconnect itself would be refused for the same reason.
LATER_FLOOR = 5.0


class Backoff:
    """delay(n) = uniform(0, min(cap, base * 2**n)) — AWS "full jitter".

    Full jitter spreads the reconnects of many clients dropped at once (a server restart)
    uniformly over the window instead of having them arrive in synchronized waves.
    """

    def __init__(
        self,
        base: float = BASE_DELAY,
        cap: float = MAX_DELAY,
        *,
        rand: Callable[[float, float], float] = random.uniform,
    ) -> None:
        if base <= 0 or cap < base:
            raise ValueError("need 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._rand = rand

    def ceiling(self, attempt: int | None = None) -> float:
        """The upper bound of the jittered delay for `attempt` (default: the next one)."""
        n = self.attempt if attempt is None else attempt
        # Cap the exponent so 2**n never overflows on a client left retrying for days.
        return min(self.cap, self.base * (1 << min(n, 32)))

    def next_delay(self, floor: float = 0.0) -> float:
        """The delay before the next attempt; advances the schedule."""
        delay = self._rand(0.0, self.ceiling())
        self.attempt += 1
        return max(floor, delay)

    def reset(self) -> None:
        self.attempt = 0


class CloseAction(Enum):
    RECONNECT = "reconnect"  # network loss, 1001/1006/1011-1014, 4000-4499
    REFRESH_THEN_RECONNECT = "refresh"  # 4401: the access token expired or was revoked
    RECONNECT_LATER = "later"  # 4008, 4029: reconnect, but not before LATER_FLOOR
    STOP = "stop"  # 1000 from the server, 1009, 4500-4999: reconnecting would not help


def close_action(code: int | None) -> CloseAction:
    """What the live session does after the socket closed with `code` (None: no close
    frame, i.e. the network dropped)."""
    if code is None or code in (1001, 1005, 1006, 1011, 1012, 1013, 1014):
        return CloseAction.RECONNECT
    if code == 4401:
        return CloseAction.REFRESH_THEN_RECONNECT
    if code in (4008, 4029):
        return CloseAction.RECONNECT_LATER
    if 4000 <= code <= 4499:
        return CloseAction.RECONNECT
    # 1000: the server ended the session on purpose; 1009: the frame would be refused
    # again; 4500-4999: the protocol says "not without changing something".
    return CloseAction.STOP
