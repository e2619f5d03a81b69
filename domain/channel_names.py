"""Live channel names: what a client says, and the internal name the backends store.

Clients say `feed` and `notifications` for their own; internally those are per user
(`feed:{user_id}`), so one user can never name another's private channel. `post:{id}`,
`user:{id}` and `public` are the same on both sides. Whether a user may see a channel is
`domain.services.subscriptions`' question; this module only names them.
"""

from __future__ import annotations

from domain.errors import NotFound, ValidationFailed
from domain.ids import parse_id

PUBLIC = "public"
# The private channels: a client names them without an id, meaning its own.
PRIVATE_KINDS = ("feed", "notifications")
# The channels that carry an id in their name.
ID_KINDS = ("post", "user")


def feed(user_id: int) -> str:
    return f"feed:{user_id}"


def notifications(user_id: int) -> str:
    return f"notifications:{user_id}"


def post(post_id: int) -> str:
    return f"post:{post_id}"


def user(user_id: int) -> str:
    return f"user:{user_id}"


def resolve(name: str, user_id: int) -> str:
    """The internal name of the channel `name` as said by the user `user_id`; NotFound for
    a name that is no channel (another user's `feed:{id}` included: see subscriptions)."""
    if name in PRIVATE_KINDS:
        return f"{name}:{user_id}"
    if name == PUBLIC:
        return PUBLIC
    kind, sep, raw_id = name.partition(":")
    if sep and kind in ID_KINDS:
        return f"{kind}:{channel_id(raw_id)}"
    raise NotFound(f"unknown channel {name[:80]!r}")


def channel_id(raw: str) -> int:
    """The id in a channel name; NotFound (not 422) when it is not one: the channel
    simply does not exist."""
    try:
        return parse_id(raw, "channel")
    except ValidationFailed:
        raise NotFound("unknown channel") from None


def client_name(internal: str) -> str:
    """The name a client sees in pushes for the internal channel `internal`."""
    kind, sep, _ = internal.partition(":")
    if sep and kind in PRIVATE_KINDS:
        return kind
    return internal
