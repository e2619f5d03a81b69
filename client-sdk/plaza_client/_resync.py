"""After an unrecoverable gap: refetch the channel over REST, and drop live events that
the refetched page already holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plaza_client.events import LiveEvent
from plaza_client.models import Page

if TYPE_CHECKING:
    from plaza_client.client import AsyncClient

__all__ = ["ResyncFilter", "fetch_resync_page"]

# Events that add one item carrying its own id; the item may already be in a resync page.
_ADDS_ITEM = frozenset({"post.created", "notification.created"})


async def fetch_resync_page(client: AsyncClient, channel: str) -> Page[Any] | None:
    """The newest page of what `channel` shows, or None when REST has no such list."""
    if channel == "feed":
        return await client.feed()
    if channel == "notifications":
        return await client.notifications()
    if channel.startswith("user:"):
        return await client.user_posts(channel.removeprefix("user:"))
    if channel.startswith("post:"):
        return Page([await client.get_post(channel.removeprefix("post:"))])
    return None


class ResyncFilter:
    """The page is fetched after the resync position, so an item created in between is
    both in the page and in a live event that follows; the event is then dropped so the
    caller never receives the same post or notification twice."""

    def __init__(self) -> None:
        self._ids: dict[str, set[str]] = {}

    def remember(self, channel: str, page: Page[Any] | None) -> None:
        ids = {
            item_id for item in page or () if isinstance(item_id := getattr(item, "id", None), str)
        }
        self._ids[channel] = ids

    def forget(self, channel: str) -> None:
        self._ids.pop(channel, None)

    def is_duplicate(self, event: LiveEvent) -> bool:
        ids = self._ids.get(event.channel)
        if not ids or event.type not in _ADDS_ITEM:
            return False
        item_id = getattr(event.data, "id", None)
        return isinstance(item_id, str) and item_id in ids
