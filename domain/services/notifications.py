"""Notifications: the owner's list, the unread count, read marks."""

from __future__ import annotations

from domain.errors import Forbidden
from domain.events import NotificationsRead
from domain.models import Notification
from domain.pagination import Page, PageRequest
from domain.services.base import Context


class NotificationService:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def page(self, owner_id: int, actor_id: int, page: PageRequest) -> Page[Notification]:
        if owner_id != actor_id:
            raise Forbidden("notifications are visible only to their owner")
        items = await self._ctx.store.notifications.page(owner_id, page)
        return Page.of(items, lambda n: n.id, page)

    async def unread_count(self, user_id: int) -> int:
        return await self._ctx.store.notifications.unread_count(user_id)

    async def mark_read(self, user_id: int, up_to_id: int | None) -> int:
        """Returns the unread count after marking."""
        store, now = self._ctx.store, self._ctx.clock.now()
        async with store.transaction():
            changed = await store.notifications.mark_read(user_id, up_to_id, now)
            if changed:
                # Other devices of the user learn the new count from this event.
                await store.outbox.append(
                    [NotificationsRead(event_id=self._ctx.ids.next_id(), at=now, user_id=user_id)]
                )
        return await store.notifications.unread_count(user_id)
