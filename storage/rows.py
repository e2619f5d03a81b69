"""Row → domain model conversion, and the paging clause shared by every list query.

Rows never leave storage/: repositories return domain models built here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import msgspec

from domain.models import (
    Account,
    Comment,
    Edge,
    Media,
    Notification,
    NotificationKind,
    Post,
    RefreshToken,
)
from domain.pagination import PageRequest
from storage.db import Row

USER_COLUMNS = (
    "id, username, email, password_hash, display_name, bio, avatar_media_id, "
    "created_at, last_active_at, token_version"
)
POST_COLUMNS = (
    "id, author_id, content, media_ids, created_at, deleted_at, like_count, comment_count, "
    "idempotency_key"
)
COMMENT_COLUMNS = "id, post_id, author_id, content, created_at"
NOTIFICATION_COLUMNS = "id, user_id, kind, actor_id, post_id, comment_id, created_at, read_at"
MEDIA_COLUMNS = "id, owner_id, content_type, size, width, height, sha256, created_at"
REFRESH_COLUMNS = "token_hash, user_id, family_id, created_at, expires_at, rotated_at, revoked_at"

_media_ids_decoder = msgspec.json.Decoder(tuple[int, ...])
_encoder = msgspec.json.Encoder()


def to_datetime(value: Any) -> datetime:
    """PostgreSQL gives aware datetimes; piccolo's SQLite converters give aware ones for
    TIMESTAMPTZ columns, but an expression column arrives as its stored text."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, bytes):
        value = value.decode()
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def to_optional_datetime(value: Any) -> datetime | None:
    return None if value is None else to_datetime(value)


def encode_media_ids(media_ids: tuple[int, ...]) -> str:
    return _encoder.encode(list(media_ids)).decode()


# The user columns under another name each, `u_<column>`, for a row that joins a user to
# something with columns of the same names (id, created_at); read back by `to_author`.
AUTHOR_COLUMNS = ", ".join(f"u.{c} AS u_{c}" for c in USER_COLUMNS.split(", "))


_USER_KEYS = tuple(USER_COLUMNS.split(", "))
_AUTHOR_KEYS = tuple(f"u_{c}" for c in _USER_KEYS)


def _account(row: Row, keys: tuple[str, ...]) -> Account:
    (id_, username, email, password_hash, display_name, bio, avatar, created, active, version) = (
        row[k] for k in keys
    )
    return Account(
        id=int(id_),
        username=username,
        email=email,
        password_hash=password_hash,
        display_name=display_name,
        bio=bio,
        avatar_media_id=avatar,
        created_at=to_datetime(created),
        last_active_at=to_datetime(active),
        token_version=int(version),
    )


def to_account(row: Row) -> Account:
    return _account(row, _USER_KEYS)


def to_author(row: Row) -> Account:
    """The account of a row selected with AUTHOR_COLUMNS."""
    return _account(row, _AUTHOR_KEYS)


def to_post(row: Row) -> Post:
    return Post(
        id=int(row["id"]),
        author_id=int(row["author_id"]),
        content=row["content"],
        media_ids=_media_ids_decoder.decode(row["media_ids"] or "[]"),
        created_at=to_datetime(row["created_at"]),
        deleted_at=to_optional_datetime(row["deleted_at"]),
        like_count=int(row["like_count"]),
        comment_count=int(row["comment_count"]),
        idempotency_key=row["idempotency_key"],
    )


def to_comment(row: Row) -> Comment:
    return Comment(
        id=int(row["id"]),
        post_id=int(row["post_id"]),
        author_id=int(row["author_id"]),
        content=row["content"],
        created_at=to_datetime(row["created_at"]),
    )


def to_notification(row: Row) -> Notification:
    return Notification(
        id=int(row["id"]),
        user_id=int(row["user_id"]),
        kind=cast(NotificationKind, row["kind"]),
        actor_id=int(row["actor_id"]),
        post_id=row["post_id"],
        comment_id=row["comment_id"],
        created_at=to_datetime(row["created_at"]),
        read_at=to_optional_datetime(row["read_at"]),
    )


def to_media(row: Row) -> Media:
    return Media(
        id=int(row["id"]),
        owner_id=int(row["owner_id"]),
        content_type=row["content_type"],
        size=int(row["size"]),
        width=int(row["width"]),
        height=int(row["height"]),
        sha256=row["sha256"],
        created_at=to_datetime(row["created_at"]),
    )


def to_refresh_token(row: Row) -> RefreshToken:
    return RefreshToken(
        token_hash=row["token_hash"],
        user_id=int(row["user_id"]),
        family_id=row["family_id"],
        created_at=to_datetime(row["created_at"]),
        expires_at=to_datetime(row["expires_at"]),
        rotated_at=to_optional_datetime(row["rotated_at"]),
        revoked_at=to_optional_datetime(row["revoked_at"]),
    )


def to_edge(row: Row) -> Edge:
    return Edge(int(row["id"]), int(row["user_id"]))


def paged(
    sql: str, args: list[Any], page: PageRequest, column: str = "id"
) -> tuple[str, list[Any]]:
    """Append the cursor conditions, order and limit of `page` to a query whose WHERE
    clause is already open (`... WHERE <cond>`), with the semantics of
    `domain.pagination.apply_page`. With min_id the query walks forward (ascending) to
    take the items right after it; `newest_first()` puts the result back in order."""
    args = list(args)
    if page.max_id is not None:
        sql += f" AND {column} < {{}}"
        args.append(page.max_id)
    if page.since_id is not None:
        sql += f" AND {column} > {{}}"
        args.append(page.since_id)
    if page.min_id is not None:
        sql += f" AND {column} > {{}}"
        args.append(page.min_id)
    direction = "ASC" if page.min_id is not None else "DESC"
    sql += f" ORDER BY {column} {direction} LIMIT {{}}"
    args.append(page.limit)
    return sql, args


def newest_first(rows: list[Row], page: PageRequest, column: str = "id") -> list[Row]:
    if page.min_id is None:
        return rows
    return sorted(rows, key=lambda row: int(row[column]), reverse=True)
