"""UserRepository on SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from domain.errors import Conflict, NotFound
from domain.models import Account, ProfileChanges
from storage.batching import TurnBatcher
from storage.db import Database, compose, in_list
from storage.rows import USER_COLUMNS, to_account

# (user id, token version, login family) of one access token.
_TokenKey = tuple[int, int, str]
# 4 parameters each: far below either engine's limit, one short statement.
_HONOURS_BATCH = 250


class SqlUserRepository:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._honours = TurnBatcher(self._honoured, max_batch=_HONOURS_BATCH)

    async def add(self, account: Account) -> None:
        # ON CONFLICT DO NOTHING instead of catching the unique violation: on PostgreSQL
        # an error aborts the surrounding transaction, and the two engines word their
        # errors differently. Which key collided is then read back.
        row = await self._db.fetchrow(
            "INSERT INTO users (id, username, username_lower, email, email_lower, "
            "password_hash, display_name, bio, avatar_media_id, created_at, last_active_at, "
            "token_version) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}) "
            "ON CONFLICT DO NOTHING RETURNING id",
            account.id,
            account.username,
            account.username.lower(),
            account.email,
            account.email.lower(),
            account.password_hash,
            account.display_name,
            account.bio,
            account.avatar_media_id,
            account.created_at,
            account.last_active_at,
            account.token_version,
        )
        if row is not None:
            return
        if await self._exists("username_lower", account.username.lower()):
            raise Conflict("this username is taken", code="username_taken")
        if await self._exists("email_lower", account.email.lower()):
            raise Conflict("this email is already registered", code="email_taken")
        raise Conflict("this account already exists")

    async def _exists(self, column: str, value: str) -> bool:
        found = await self._db.fetchrow(
            compose("SELECT 1 AS x FROM users WHERE", column, "= {}"), value
        )
        return found is not None

    async def get(self, user_id: int) -> Account | None:
        row = await self._db.fetchrow(
            compose("SELECT", USER_COLUMNS, "FROM users WHERE id = {}"), user_id
        )
        return None if row is None else to_account(row)

    async def honours(self, user_id: int, token_version: int, family_id: str) -> bool:
        # Every authenticated request and socket asks: the questions of one loop turn
        # (a reconnect storm, a busy instance) go as one statement.
        return bool(await self._honours.get((user_id, token_version, family_id)))

    async def _honoured(self, keys: Sequence[_TokenKey]) -> dict[_TokenKey, bool]:
        values = ", ".join(
            "(CAST({} AS INTEGER), CAST({} AS BIGINT), CAST({} AS INTEGER), CAST({} AS TEXT))"
            for _ in keys
        )
        args = [a for n, key in enumerate(keys) for a in (n, *key)]
        rows = await self._db.fetch(
            compose(
                "WITH asked (n, user_id, version, family_id) AS (VALUES",
                values,
                ") SELECT a.n AS n FROM asked a JOIN users u "
                "ON u.id = a.user_id AND u.token_version = a.version "
                "WHERE NOT EXISTS (SELECT 1 FROM refresh_tokens r "
                "WHERE r.family_id = a.family_id AND r.revoked_at IS NOT NULL)",
            ),
            *args,
        )
        return {keys[int(row["n"])]: True for row in rows}

    async def get_many(self, user_ids: Sequence[int]) -> dict[int, Account]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return {}
        rows = await self._db.fetch(
            compose("SELECT", USER_COLUMNS, "FROM users WHERE id IN", in_list(ids)),
            *ids,
        )
        return {account.id: account for account in map(to_account, rows)}

    async def find_by_login(self, login: str) -> Account | None:
        column = "email_lower" if "@" in login else "username_lower"
        row = await self._db.fetchrow(
            compose("SELECT", USER_COLUMNS, "FROM users WHERE", column, "= {}"),
            login.lower(),
        )
        return None if row is None else to_account(row)

    async def update_profile(self, user_id: int, changes: ProfileChanges) -> Account | None:
        assignments: list[str] = []
        args: list[Any] = []
        for field in ("display_name", "bio", "avatar_media_id"):
            value = getattr(changes, field)
            if value is not msgspec.UNSET:
                assignments.append(field + " = {}")
                args.append(value)
        if not assignments:
            return await self.get(user_id)
        row = await self._db.fetchrow(
            compose(
                "UPDATE users SET", ", ".join(assignments), "WHERE id = {} RETURNING", USER_COLUMNS
            ),
            *args,
            user_id,
        )
        return None if row is None else to_account(row)

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        await self._db.execute(
            "UPDATE users SET password_hash = {} WHERE id = {}", password_hash, user_id
        )

    async def bump_token_version(self, user_id: int) -> int:
        value = await self._db.fetchval(
            "UPDATE users SET token_version = token_version + 1 WHERE id = {} "
            "RETURNING token_version",
            user_id,
        )
        if value is None:
            raise NotFound("no such user")
        return int(value)

    async def touch(self, user_id: int, at: datetime) -> None:
        # Only forward: a late, out-of-order touch must not make a user look idle.
        await self._db.execute(
            "UPDATE users SET last_active_at = {} WHERE id = {} AND last_active_at < {}",
            at,
            user_id,
            at,
        )
