"""Access tokens (short-lived JWTs, HS256) and opaque refresh tokens.

Access tokens are verified without a database read (the token version and session id in
the claims let callers reject revoked logins where it matters). Refresh tokens are random
strings the server only ever stores hashed.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import jwt
import msgspec

from domain.errors import Unauthorized
from domain.ports import Clock

__all__ = [
    "ALGORITHM",
    "Claims",
    "JwtAccessTokens",
    "hash_refresh_token",
    "new_refresh_token",
]

# Pinned: the algorithm is never taken from the token header, so "none" and RS/HS
# confusion attacks cannot apply. HS256 because issuer and verifier are the same service.
ALGORITHM = "HS256"

# Clocks of a fleet's nodes agree within milliseconds under NTP; 5 s absorbs a node whose
# clock stepped without letting a token be used noticeably past its expiry.
LEEWAY_SECONDS = 5

# The claims every token must carry; any missing one is a defect.
REQUIRED_CLAIMS = ("exp", "iat", "sub", "iss", "aud", "ver", "sid", "jti")

MIN_SECRET_CHARS = 32

# Tokens whose signature, issuer and audience were verified, kept so that a client's next
# requests skip the HMAC and the JSON (~130 µs, a tenth of a feed read's CPU). The time
# claims are checked again on every use, and revocation is asked of the database on every
# request anyway. Only tokens that passed get in, so the bound (a few MB at ~600 bytes a
# token) holds whatever is sent; 10,000 covers the clients of one instance within a
# token's lifetime.
VERIFIED_CACHE_SIZE = 10_000


class Claims(msgspec.Struct, frozen=True, kw_only=True):
    """A verified access token (satisfies `domain.ports.AccessClaims`)."""

    user_id: int
    token_version: int
    session_id: str
    expires_at: datetime  # aware, UTC
    token_id: str = ""


class JwtAccessTokens:
    """`domain.ports.AccessTokens` as HS256 JWTs."""

    def __init__(
        self,
        secret: str,
        issuer: str,
        audience: str,
        ttl_seconds: int,
        clock: Clock | None = None,
    ) -> None:
        if len(secret) < MIN_SECRET_CHARS:
            raise ValueError(f"the JWT secret must be at least {MIN_SECRET_CHARS} characters")
        self._secret = secret
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        # token -> (its claims, iat, nbf): what the checks on every use need, compactly.
        self._verified: OrderedDict[str, tuple[Claims, float, float]] = OrderedDict()

    def _now(self) -> float:
        return self._clock.now().timestamp() if self._clock is not None else time.time()

    def issue(self, user_id: int, token_version: int, session_id: str) -> str:
        now = int(self._now())
        payload = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(user_id),  # RFC 7519: sub is a string; ids travel as strings anyway
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_seconds,
            "ver": token_version,
            "sid": session_id,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Claims:
        """Raises Unauthorized: code `token_expired` once expired (the client should
        refresh), `invalid_token` for every other defect."""
        verified = self._verified.get(token)
        if verified is not None:
            self._verified.move_to_end(token)
            claims, iat, nbf = verified
            self._check_time(claims.expires_at.timestamp(), iat, nbf)
            return claims
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                audience=self.audience,
                # Time claims are checked below against the injected clock.
                options={
                    "require": list(REQUIRED_CLAIMS),
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as error:
            raise _invalid(f"invalid access token: {error}") from None
        exp, iat, nbf = payload["exp"], payload["iat"], payload.get("nbf", payload["iat"])
        if not all(_is_number(value) for value in (exp, iat, nbf)):
            raise _invalid("invalid access token: exp, iat and nbf must be numbers")
        self._check_time(exp, iat, nbf)
        claims = self._claims(payload, exp)  # raises before caching a token not usable
        self._verified[token] = (claims, iat, nbf)
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return claims

    def _check_time(self, exp: float, iat: float, nbf: float) -> None:
        now = self._now()
        if now >= exp + LEEWAY_SECONDS:
            raise Unauthorized("the access token has expired", code="token_expired")
        if iat > now + LEEWAY_SECONDS or nbf > now + LEEWAY_SECONDS:
            raise _invalid("invalid access token: issued in the future")

    def _claims(self, payload: dict[str, Any], exp: float) -> Claims:
        sub, ver, sid, jti = payload["sub"], payload["ver"], payload["sid"], payload["jti"]
        if not (isinstance(sub, str) and sub.isascii() and sub.isdigit()):
            raise _invalid("invalid access token: sub is not a user id")
        if not isinstance(ver, int) or isinstance(ver, bool):
            raise _invalid("invalid access token: ver is not an integer")
        if not (isinstance(sid, str) and sid and isinstance(jti, str)):
            raise _invalid("invalid access token: sid and jti must be strings")
        return Claims(
            user_id=int(sub),
            token_version=ver,
            session_id=sid,
            expires_at=datetime.fromtimestamp(exp, UTC),
            token_id=jti,
        )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _invalid(message: str) -> Unauthorized:
    return Unauthorized(message, code="invalid_token")


def new_refresh_token() -> str:
    """256 random bits, URL-safe: unguessable, so it needs no slow hash (see below)."""
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    """SHA-256 hex of a refresh token: the only form the database ever holds.

    A leaked table then yields no usable tokens. A fast hash is enough because the token
    has 256 bits of entropy (nothing to brute-force, unlike a password), and being
    deterministic it can be looked up by equality on an index.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
