"""Input rules shared by REST and WebSocket actions (one code path, same errors)."""

from __future__ import annotations

import re

from domain.errors import ValidationFailed

USERNAME_RE = re.compile(r"^[a-z0-9_]{3,30}$")
# Deliberately simple: one @, a dot in the domain, no spaces. Deliverability is for a
# confirmation mail to prove, not for a regex.
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
EMAIL_MAX = 254  # RFC 5321's path limit
PASSWORD_MIN_BYTES = 8
# argon2 hashes any length, but a megabyte password is a cheap way to burn our CPU.
PASSWORD_MAX_BYTES = 1024
POST_MAX_CHARS = 500
COMMENT_MAX_CHARS = 500
DISPLAY_NAME_MAX = 50
BIO_MAX = 500
# Four images per post, as on the major networks: enough for a set, bounded hydration.
MEDIA_PER_POST_MAX = 4
IDEMPOTENCY_KEY_MAX = 255
SEARCH_QUERY_MAX = 100


def _fail(field: str, message: str, code: str = "validation_error") -> ValidationFailed:
    return ValidationFailed(message, code=code, details={"field": field})


def username(value: str) -> str:
    name = value.strip().lower()
    if not USERNAME_RE.fullmatch(name):
        raise _fail("username", "username must be 3-30 characters of a-z, 0-9 and _")
    return name


def email(value: str) -> str:
    address = value.strip()
    # Control characters (NUL above all: PostgreSQL text cannot hold it) are never valid.
    if len(address) > EMAIL_MAX or not address.isprintable() or not EMAIL_RE.fullmatch(address):
        raise _fail("email", "email is not a valid address")
    local, _, domain_part = address.rpartition("@")
    # The domain part is case-insensitive by definition; the local part is kept as given
    # but uniqueness compares the whole address case-insensitively (what users expect).
    return f"{local}@{domain_part.lower()}"


def password(value: str) -> str:
    size = len(value.encode("utf-8"))
    if size < PASSWORD_MIN_BYTES:
        raise _fail("password", f"password must be at least {PASSWORD_MIN_BYTES} bytes")
    if size > PASSWORD_MAX_BYTES:
        raise _fail("password", f"password must be at most {PASSWORD_MAX_BYTES} bytes")
    return value


def text(value: str, *, field: str, max_chars: int) -> str:
    if not value.strip():
        raise _fail(field, f"{field} must not be blank")
    if len(value) > max_chars:
        raise _fail(field, f"{field} must be at most {max_chars} characters")
    if "\x00" in value:
        raise _fail(field, f"{field} must not contain NUL characters")
    return value


def display_name(value: str) -> str:
    value = value.strip()
    if len(value) > DISPLAY_NAME_MAX or "\x00" in value:
        raise _fail("display_name", f"display_name must be at most {DISPLAY_NAME_MAX} characters")
    return value


def bio(value: str) -> str:
    if len(value) > BIO_MAX or "\x00" in value:
        raise _fail("bio", f"bio must be at most {BIO_MAX} characters")
    return value


def idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not value or len(value) > IDEMPOTENCY_KEY_MAX or not value.isprintable():
        raise _fail(
            "idempotency_key",
            f"idempotency key must be 1-{IDEMPOTENCY_KEY_MAX} printable characters",
        )
    return value


def search_query(value: str) -> str:
    query = " ".join(value.split())
    if not query:
        raise _fail("q", "q must not be blank")
    if len(query) > SEARCH_QUERY_MAX:
        raise _fail("q", f"q must be at most {SEARCH_QUERY_MAX} characters")
    if "\x00" in query:
        raise _fail("q", "q must not contain NUL characters")
    return query
