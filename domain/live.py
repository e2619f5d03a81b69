"""Internal live channel names. The client sees `feed` and `notifications` for its own
user; everything else is named the same on the wire."""

from __future__ import annotations

PUBLIC = "public"


def feed(user_id: int) -> str:
    return f"feed:{user_id}"


def notifications(user_id: int) -> str:
    return f"notifications:{user_id}"


def post(post_id: int) -> str:
    return f"post:{post_id}"


def user(user_id: int) -> str:
    return f"user:{user_id}"
