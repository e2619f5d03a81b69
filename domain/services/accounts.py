"""Accounts: registration and profiles."""

from __future__ import annotations

import msgspec

from domain import validation
from domain.errors import Forbidden, ValidationFailed
from domain.models import Account, ProfileChanges
from domain.ports import PasswordHasher
from domain.services.base import Context, visible_user


class AccountService:
    def __init__(self, ctx: Context, hasher: PasswordHasher) -> None:
        self._ctx = ctx
        self._hasher = hasher

    async def register(self, username: str, email: str, password: str) -> Account:
        name = validation.username(username)
        address = validation.email(email)
        validation.password(password)
        password_hash = await self._hasher.hash(password)
        now = self._ctx.clock.now()
        account = Account(
            id=self._ctx.ids.next_id(),
            username=name,
            email=address,
            password_hash=password_hash,
            display_name=name,
            bio="",
            avatar_media_id=None,
            created_at=now,
            last_active_at=now,
            token_version=0,
        )
        async with self._ctx.store.transaction():
            await self._ctx.store.users.add(account)  # Conflict on a taken name or email
        return account

    async def get(self, user_id: int, viewer_id: int | None) -> Account:
        return await visible_user(self._ctx, user_id, viewer_id)

    async def update_profile(self, user_id: int, actor_id: int, changes: ProfileChanges) -> Account:
        if user_id != actor_id:
            raise Forbidden("you can only change your own profile")
        clean = ProfileChanges(
            display_name=(
                changes.display_name
                if changes.display_name is msgspec.UNSET
                else validation.display_name(changes.display_name)
            ),
            bio=changes.bio if changes.bio is msgspec.UNSET else validation.bio(changes.bio),
            avatar_media_id=changes.avatar_media_id,
        )
        if isinstance(clean.avatar_media_id, int):
            media = await self._ctx.store.media.get(clean.avatar_media_id)
            if media is None or media.owner_id != actor_id:
                raise ValidationFailed(
                    "avatar_media_id must be one of your own uploads",
                    code="invalid_media",
                    details={"field": "avatar_media_id"},
                )
        async with self._ctx.store.transaction():
            account = await self._ctx.store.users.update_profile(user_id, clean)
        if account is None:
            raise Forbidden("account no longer exists")
        return account
