"""Login, refresh-token rotation, logout and password change.

Access tokens are short-lived JWTs carrying the account's token_version and the login's
session id (its refresh family). Refresh tokens are opaque, stored hashed, rotated on every
use; presenting a spent one revokes the whole family (it was stolen, or a client is
confused: both mean nobody should hold a live token of that login any more).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import msgspec

from domain import validation
from domain.errors import Unauthorized
from domain.models import Account, RefreshToken
from domain.ports import AccessTokens, PasswordHasher, SessionRevoker
from domain.services.base import Context
from domain.views import MeView, TokenPair


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: the verified access token, checked against the account."""

    user_id: int
    session_id: str
    expires_at_unix: float


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _invalid_credentials() -> Unauthorized:
    # The same error for an unknown account and a wrong password: no account probing.
    return Unauthorized("invalid login or password", code="invalid_credentials")


class AuthService:
    def __init__(
        self,
        ctx: Context,
        hasher: PasswordHasher,
        tokens: AccessTokens,
        *,
        refresh_ttl_seconds: int,
        revoker: SessionRevoker,
    ) -> None:
        self._ctx = ctx
        self._hasher = hasher
        self._tokens = tokens
        self._refresh_ttl = timedelta(seconds=refresh_ttl_seconds)
        self._revoker = revoker

    async def login(self, login: str, password: str) -> TokenPair:
        # A NUL never matches an account, and PostgreSQL refuses it in a query parameter.
        if (
            not login
            or "\x00" in login
            or len(password.encode("utf-8")) > validation.PASSWORD_MAX_BYTES
        ):
            await self._hasher.burn(password[:64])
            raise _invalid_credentials()
        account = await self._ctx.store.users.find_by_login(login.strip())
        if account is None:
            await self._hasher.burn(password)
            raise _invalid_credentials()
        if not await self._hasher.verify(account.password_hash, password):
            raise _invalid_credentials()
        if self._hasher.needs_rehash(account.password_hash):
            new_hash = await self._hasher.hash(password)
            async with self._ctx.store.transaction():
                await self._ctx.store.users.set_password_hash(account.id, new_hash)
        return await self._new_pair(account, family_id=uuid.uuid4().hex)

    async def refresh(
        self,
        refresh_token: str,
        *,
        admit: Callable[[str], Awaitable[None]] | None = None,
    ) -> TokenPair:
        """A new pair for a valid refresh token. `admit(session_id)` runs before the token
        is spent and may refuse by raising (the server's per-login rate limit: the login is
        known only once its token has been looked up)."""
        store = self._ctx.store
        now = self._ctx.clock.now()
        token_hash = hash_refresh_token(refresh_token)
        record = await store.refresh_tokens.get(token_hash)
        if record is None or record.revoked_at is not None or record.expires_at <= now:
            raise Unauthorized("refresh token is not valid", code="invalid_token")
        if admit is not None:
            await admit(record.family_id)
        async with store.transaction():
            spent_now = await store.refresh_tokens.mark_rotated(token_hash, now)
            if not spent_now:
                await store.refresh_tokens.revoke_family(record.family_id, now)
        if not spent_now:
            await self._revoke_sessions(record.user_id, record.family_id)
            raise Unauthorized(
                "refresh token was already used; this login is revoked",
                code="refresh_token_reused",
            )
        account = await store.users.get(record.user_id)
        if account is None:
            raise Unauthorized("account no longer exists", code="invalid_token")
        return await self._new_pair(account, family_id=record.family_id)

    async def logout(self, refresh_token: str) -> None:
        record = await self._ctx.store.refresh_tokens.get(hash_refresh_token(refresh_token))
        if record is None:
            raise Unauthorized("refresh token is not valid", code="invalid_token")
        async with self._ctx.store.transaction():
            await self._ctx.store.refresh_tokens.revoke_family(
                record.family_id, self._ctx.clock.now()
            )
        await self._revoke_sessions(record.user_id, record.family_id)

    async def logout_everywhere(self, user_id: int) -> None:
        """Every token of the account dies: access tokens by version, refresh by revoke."""
        async with self._ctx.store.transaction():
            await self._ctx.store.users.bump_token_version(user_id)
            await self._ctx.store.refresh_tokens.revoke_user(user_id, self._ctx.clock.now())
        await self._revoker.revoke_user(user_id)

    async def change_password(self, user_id: int, old_password: str, new_password: str) -> None:
        account = await self._ctx.store.users.get(user_id)
        if account is None or not await self._hasher.verify(account.password_hash, old_password):
            raise _invalid_credentials()
        validation.password(new_password)
        new_hash = await self._hasher.hash(new_password)
        async with self._ctx.store.transaction():
            await self._ctx.store.users.set_password_hash(user_id, new_hash)
            await self._ctx.store.users.bump_token_version(user_id)
            await self._ctx.store.refresh_tokens.revoke_user(user_id, self._ctx.clock.now())
        await self._revoker.revoke_user(user_id)

    async def authenticate(self, access_token: str) -> Principal:
        """Verify a token and that its account still honours it: the same token_version
        (logout everywhere, password change) and a login not logged out. Both live in the
        database every instance shares, so a logout holds everywhere at once."""
        claims = self._tokens.verify(access_token)
        users = self._ctx.store.users
        if not await users.honours(claims.user_id, claims.token_version, claims.session_id):
            raise Unauthorized("token has been revoked", code="invalid_token")
        return Principal(
            user_id=claims.user_id,
            session_id=claims.session_id,
            expires_at_unix=claims.expires_at.timestamp(),
        )

    async def _new_pair(self, account: Account, *, family_id: str) -> TokenPair:
        now = self._ctx.clock.now()
        refresh = secrets.token_urlsafe(32)
        async with self._ctx.store.transaction():
            await self._ctx.store.refresh_tokens.add(
                RefreshToken(
                    token_hash=hash_refresh_token(refresh),
                    user_id=account.id,
                    family_id=family_id,
                    created_at=now,
                    expires_at=now + self._refresh_ttl,
                )
            )
            await self._ctx.store.users.touch(account.id, now)
        return TokenPair(
            access_token=self._tokens.issue(account.id, account.token_version, family_id),
            refresh_token=refresh,
            token_type="Bearer",  # noqa: S106 - the scheme name, not a secret
            expires_in=self._tokens.ttl_seconds,
            user=MeView.of_me(account),
        )

    async def _revoke_sessions(self, user_id: int, family_id: str) -> None:
        await self._revoker.revoke_session(user_id, family_id)
