"""Follows and blocks."""

from __future__ import annotations

from domain.errors import Forbidden, ValidationFailed
from domain.events import BlockCreated, DomainEvent, FollowCreated, FollowRemoved
from domain.models import Account, Relationship
from domain.pagination import Page, PageRequest
from domain.services.base import Context, user_list, visible_user


class SocialService:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def relationship(self, actor_id: int, target_id: int) -> Relationship:
        await visible_user(self._ctx, target_id, actor_id)
        return await self._ctx.store.relations.relationship(actor_id, target_id)

    async def follow(self, actor_id: int, target_id: int) -> Relationship:
        if actor_id == target_id:
            raise ValidationFailed("you cannot follow yourself", code="cannot_follow_self")
        await visible_user(self._ctx, target_id, actor_id)
        store, now = self._ctx.store, self._ctx.clock.now()
        async with store.transaction():
            if await store.relations.blocked_either_way(actor_id, target_id):
                raise Forbidden("you cannot follow this user", code="blocked")
            edge_id = self._ctx.ids.next_id()
            if await store.relations.follow(edge_id, actor_id, target_id, now):
                await store.outbox.append(
                    [
                        FollowCreated(
                            event_id=edge_id, at=now, follower_id=actor_id, followed_id=target_id
                        )
                    ]
                )
            relationship = await self._ctx.store.relations.relationship(actor_id, target_id)
        return relationship

    async def unfollow(self, actor_id: int, target_id: int) -> Relationship:
        if actor_id == target_id:
            raise ValidationFailed("you cannot unfollow yourself", code="cannot_follow_self")
        await visible_user(self._ctx, target_id, actor_id)
        store, now = self._ctx.store, self._ctx.clock.now()
        async with store.transaction():
            if await store.relations.unfollow(actor_id, target_id):
                await store.outbox.append(
                    [
                        FollowRemoved(
                            event_id=self._ctx.ids.next_id(),
                            at=now,
                            follower_id=actor_id,
                            followed_id=target_id,
                        )
                    ]
                )
            relationship = await self._ctx.store.relations.relationship(actor_id, target_id)
        return relationship

    async def block(self, actor_id: int, target_id: int) -> Relationship:
        if actor_id == target_id:
            raise ValidationFailed("you cannot block yourself", code="cannot_block_self")
        if await self._ctx.store.users.get(target_id) is None:
            await visible_user(self._ctx, target_id, actor_id)  # raises not found
        store, now = self._ctx.store, self._ctx.clock.now()
        async with store.transaction():
            events: list[DomainEvent] = []
            # A block ends follows both ways, in the same transaction as the block itself.
            for follower, followed in ((actor_id, target_id), (target_id, actor_id)):
                if await store.relations.unfollow(follower, followed):
                    events.append(
                        FollowRemoved(
                            event_id=self._ctx.ids.next_id(),
                            at=now,
                            follower_id=follower,
                            followed_id=followed,
                        )
                    )
            edge_id = self._ctx.ids.next_id()
            if await store.relations.block(edge_id, actor_id, target_id, now):
                events.append(
                    BlockCreated(
                        event_id=edge_id, at=now, blocker_id=actor_id, blocked_id=target_id
                    )
                )
            if events:
                await store.outbox.append(events)
            relationship = await self._ctx.store.relations.relationship(actor_id, target_id)
        return relationship

    async def unblock(self, actor_id: int, target_id: int) -> Relationship:
        if actor_id == target_id:
            raise ValidationFailed("you cannot unblock yourself", code="cannot_block_self")
        if await self._ctx.store.users.get(target_id) is None:
            await visible_user(self._ctx, target_id, actor_id)
        async with self._ctx.store.transaction():
            await self._ctx.store.relations.unblock(actor_id, target_id)
            relationship = await self._ctx.store.relations.relationship(actor_id, target_id)
        return relationship

    async def followers(
        self, user_id: int, viewer_id: int | None, page: PageRequest
    ) -> Page[Account]:
        await visible_user(self._ctx, user_id, viewer_id)
        relations = self._ctx.store.relations
        return await user_list(
            self._ctx, page, lambda p: relations.followers(user_id, p), viewer_id
        )

    async def following(
        self, user_id: int, viewer_id: int | None, page: PageRequest
    ) -> Page[Account]:
        await visible_user(self._ctx, user_id, viewer_id)
        relations = self._ctx.store.relations
        return await user_list(
            self._ctx, page, lambda p: relations.following(user_id, p), viewer_id
        )
