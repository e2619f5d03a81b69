"""Who may subscribe to which live channel."""

from __future__ import annotations

from domain import channel_names
from domain.errors import Forbidden
from domain.services.base import Context, visible_post, visible_user


class SubscriptionService:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def authorize(self, name: str, user_id: int) -> str:
        """The internal name of channel `name` if `user_id` may listen to it: Forbidden for
        another user's private channel, NotFound for no channel or one the user may not
        see (a deleted post, a post or profile across a block)."""
        kind, sep, rest = name.partition(":")
        if sep and kind in channel_names.PRIVATE_KINDS:
            # Naming another user's private channel: it exists, and it is not yours.
            if channel_names.channel_id(rest) != user_id:
                raise Forbidden(f"{kind} of another user")
            return channel_names.resolve(kind, user_id)
        internal = channel_names.resolve(name, user_id)
        if sep and kind == "post":
            await visible_post(self._ctx, channel_names.channel_id(rest), user_id)
        elif sep and kind == "user":
            await visible_user(self._ctx, channel_names.channel_id(rest), user_id)
        return internal
