"""Channel names: what a client says, what the backend stores.

Clients say `feed` and `notifications` for their own; internally those are per user
(`feed:{user_id}`), so one user can never name another's private channel. `post:{id}`,
`user:{id}` and `public` are the same on both sides.
"""

from __future__ import annotations

__all__ = [
    "PUBLIC",
    "UnknownChannel",
    "client_name",
    "feed_channel",
    "notifications_channel",
    "parse_id",
    "post_channel",
    "resolve",
    "user_channel",
]

PUBLIC = "public"
# Ids are positive signed 64-bit integers (SQL BIGINT), so at most 19 decimal digits.
_MAX_ID = 2**63 - 1


class UnknownChannel(ValueError):
    """No such channel (the session answers `not_found`)."""


def parse_id(text: str) -> int | None:
    """A positive 64-bit id written in plain ASCII decimal, without sign or leading zeros."""
    if not (0 < len(text) <= 19 and text.isascii() and text.isdigit()) or text[0] == "0":
        return None
    value = int(text)
    return value if value <= _MAX_ID else None


def feed_channel(user_id: int) -> str:
    return f"feed:{user_id}"


def notifications_channel(user_id: int) -> str:
    return f"notifications:{user_id}"


def post_channel(post_id: int) -> str:
    return f"post:{post_id}"


def user_channel(user_id: int) -> str:
    return f"user:{user_id}"


def resolve(name: str, user_id: int) -> str:
    """The internal name of the channel `name` as said by the user `user_id`."""
    if name == "feed":
        return feed_channel(user_id)
    if name == "notifications":
        return notifications_channel(user_id)
    if name == PUBLIC:
        return PUBLIC
    kind, sep, raw_id = name.partition(":")
    if sep and kind in ("post", "user"):
        ident = parse_id(raw_id)
        if ident is not None:
            return f"{kind}:{ident}"
    raise UnknownChannel(f"unknown channel {name[:80]!r}")


def client_name(internal: str) -> str:
    """The name a client sees in pushes for the internal channel `internal`."""
    kind, sep, _ = internal.partition(":")
    if sep and kind in ("feed", "notifications"):
        return kind
    return internal
