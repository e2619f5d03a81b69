"""Rate limits out of the way: tests and benchmarks register many users from one loopback
address and write far faster than people, which is not what the limits are about (they
have their own tests: tests/server/test_api_ratelimit.py)."""

from __future__ import annotations

from typing import Any

from server.ratelimit import Rate

__all__ = ["UNLIMITED_ENV", "UNLIMITED_SETTINGS"]

_PLENTY = Rate(100_000, 60)

# For `plaza serve` / `plaza worker` processes.
UNLIMITED_ENV = {
    "PLAZA_RATE_AUTH_PER_IP_PER_MINUTE": "100000",
    "PLAZA_RATE_WRITES_PER_USER_PER_MINUTE": "100000",
    "PLAZA_RATE_LOGIN_PER_ACCOUNT": str(_PLENTY),
    "PLAZA_RATE_REFRESH_PER_SESSION": str(_PLENTY),
    "PLAZA_RATE_POSTS_PER_USER": str(_PLENTY),
    "PLAZA_RATE_INTERACTIONS_PER_USER": str(_PLENTY),
    "PLAZA_RATE_UPLOADS_PER_USER": str(_PLENTY),
}

# For `Settings(...)` in-process apps.
UNLIMITED_SETTINGS: dict[str, Any] = {
    "rate_auth_per_ip_per_minute": 100_000,
    "rate_writes_per_user_per_minute": 100_000,
    "rate_login_per_account": _PLENTY,
    "rate_refresh_per_session": _PLENTY,
    "rate_posts_per_user": _PLENTY,
    "rate_interactions_per_user": _PLENTY,
    "rate_uploads_per_user": _PLENTY,
}
