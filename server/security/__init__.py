"""Security primitives: password hashing (argon2id) and tokens (JWT access, opaque refresh)."""

from server.security.passwords import Argon2Hasher
from server.security.tokens import (
    Claims,
    JwtAccessTokens,
    hash_refresh_token,
    new_refresh_token,
)

__all__ = [
    "Argon2Hasher",
    "Claims",
    "JwtAccessTokens",
    "hash_refresh_token",
    "new_refresh_token",
]
