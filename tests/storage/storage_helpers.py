"""Builders shared by the storage contract tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from domain.models import Account, Post

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def at(seconds: int = 0) -> datetime:
    return T0 + timedelta(seconds=seconds)


def make_account(user_id: int, username: str, email: str | None = None, **extra: Any) -> Account:
    fields: dict[str, Any] = {
        "id": user_id,
        "username": username,
        "email": email or f"{username.lower()}@example.com",
        "password_hash": "$argon2id$fake",
        "display_name": username.title(),
        "bio": "",
        "avatar_media_id": None,
        "created_at": T0,
        "last_active_at": T0,
        "token_version": 0,
    }
    fields.update(extra)
    return Account(**fields)


def make_post(post_id: int, author_id: int, content: str = "hello", **extra: Any) -> Post:
    fields: dict[str, Any] = {
        "id": post_id,
        "author_id": author_id,
        "content": content,
        "media_ids": (),
        "created_at": T0,
    }
    fields.update(extra)
    return Post(**fields)
