"""RefreshTokenRepository on SQL."""

from __future__ import annotations

from datetime import datetime

from domain.models import RefreshToken
from storage.db import Database, compose
from storage.rows import REFRESH_COLUMNS, to_refresh_token


class SqlRefreshTokenRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, token: RefreshToken) -> None:
        await self._db.execute(
            "INSERT INTO refresh_tokens (token_hash, user_id, family_id, created_at, "
            "expires_at, rotated_at, revoked_at) VALUES ({}, {}, {}, {}, {}, {}, {})",
            token.token_hash,
            token.user_id,
            token.family_id,
            token.created_at,
            token.expires_at,
            token.rotated_at,
            token.revoked_at,
        )

    async def get(self, token_hash: str) -> RefreshToken | None:
        row = await self._db.fetchrow(
            compose("SELECT", REFRESH_COLUMNS, "FROM refresh_tokens WHERE token_hash = {}"),
            token_hash,
        )
        return None if row is None else to_refresh_token(row)

    async def mark_rotated(self, token_hash: str, at: datetime) -> bool:
        # Compare-and-set in one statement: of two concurrent refreshes with the same
        # token exactly one sees its row come back; the other is a reuse.
        row = await self._db.fetchrow(
            "UPDATE refresh_tokens SET rotated_at = {} "
            "WHERE token_hash = {} AND rotated_at IS NULL RETURNING token_hash",
            at,
            token_hash,
        )
        return row is not None

    async def revoke_family(self, family_id: str, at: datetime) -> None:
        await self._db.execute(
            "UPDATE refresh_tokens SET revoked_at = {} WHERE family_id = {} AND revoked_at IS NULL",
            at,
            family_id,
        )

    async def revoke_user(self, user_id: int, at: datetime) -> None:
        await self._db.execute(
            "UPDATE refresh_tokens SET revoked_at = {} WHERE user_id = {} AND revoked_at IS NULL",
            at,
            user_id,
        )
