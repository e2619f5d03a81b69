"""PostRepository, LikeRepository and CommentRepository on SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.errors import NotFound
from domain.models import Account, Comment, Edge, Post, SeenPost
from domain.pagination import PageRequest
from storage.db import Database, compose, in_list
from storage.rows import (
    AUTHOR_COLUMNS,
    COMMENT_COLUMNS,
    POST_COLUMNS,
    encode_media_ids,
    newest_first,
    paged,
    to_author,
    to_comment,
    to_edge,
    to_post,
)

_SEEN_POST_COLUMNS = ", ".join(f"p.{c}" for c in POST_COLUMNS.split(", "))


class SqlPostRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, post: Post) -> bool:
        # DO NOTHING on the (author_id, idempotency_key) unique index: a retried request
        # writes nothing and the caller reads the first post back. On PostgreSQL a
        # concurrent insert of the same key waits for the first transaction to finish.
        row = await self._db.fetchrow(
            "INSERT INTO posts (id, author_id, content, media_ids, created_at, deleted_at, "
            "like_count, comment_count, idempotency_key) "
            "VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}) ON CONFLICT DO NOTHING RETURNING id",
            post.id,
            post.author_id,
            post.content,
            encode_media_ids(post.media_ids),
            post.created_at,
            post.deleted_at,
            post.like_count,
            post.comment_count,
            post.idempotency_key,
        )
        return row is not None

    async def get(self, post_id: int) -> Post | None:
        row = await self._db.fetchrow(
            compose("SELECT", POST_COLUMNS, "FROM posts WHERE id = {}"), post_id
        )
        return None if row is None else to_post(row)

    async def get_by_idempotency_key(self, author_id: int, key: str) -> Post | None:
        row = await self._db.fetchrow(
            compose(
                "SELECT", POST_COLUMNS, "FROM posts WHERE author_id = {} AND idempotency_key = {}"
            ),
            author_id,
            key,
        )
        return None if row is None else to_post(row)

    async def get_many(self, post_ids: Sequence[int]) -> dict[int, Post]:
        ids = list(dict.fromkeys(post_ids))
        if not ids:
            return {}
        rows = await self._db.fetch(
            compose(
                "SELECT",
                POST_COLUMNS,
                "FROM posts WHERE id IN",
                in_list(ids),
                "AND deleted_at IS NULL",
            ),
            *ids,
        )
        return {post.id: post for post in map(to_post, rows)}

    async def seen_by(self, post_ids: Sequence[int], viewer_id: int | None) -> dict[int, SeenPost]:
        ids = list(dict.fromkeys(post_ids))
        if not ids:
            return {}
        # Without a viewer nothing is liked; -1 is no user's id (ids are positive).
        rows = await self._db.fetch(
            compose(
                "SELECT",
                _SEEN_POST_COLUMNS,
                ",",
                AUTHOR_COLUMNS,
                ", EXISTS (SELECT 1 FROM likes l WHERE l.post_id = p.id AND l.user_id = {})",
                "AS liked FROM posts p JOIN users u ON u.id = p.author_id WHERE p.id IN",
                in_list(ids),
                "AND p.deleted_at IS NULL",
            ),
            viewer_id if viewer_id is not None else -1,
            *ids,
        )
        authors: dict[int, Account] = {}  # a page holds few authors, many times each
        seen: dict[int, SeenPost] = {}
        for row in rows:
            author = authors.get(row["u_id"])
            if author is None:
                author = authors[row["u_id"]] = to_author(row)
            seen[int(row["id"])] = SeenPost(
                post=to_post(row), author=author, liked=bool(row["liked"])
            )
        return seen

    async def soft_delete(self, post_id: int, at: datetime) -> bool:
        row = await self._db.fetchrow(
            "UPDATE posts SET deleted_at = {} WHERE id = {} AND deleted_at IS NULL RETURNING id",
            at,
            post_id,
        )
        return row is not None

    async def by_author(self, author_id: int, page: PageRequest) -> list[Post]:
        sql, args = paged(
            compose(
                "SELECT", POST_COLUMNS, "FROM posts WHERE author_id = {} AND deleted_at IS NULL"
            ),
            [author_id],
            page,
        )
        return [to_post(row) for row in newest_first(await self._db.fetch(sql, *args), page)]

    async def add_to_like_count(self, post_id: int, delta: int) -> int:
        return await self._add_to_counter("like_count", post_id, delta)

    async def add_to_comment_count(self, post_id: int, delta: int) -> int:
        return await self._add_to_counter("comment_count", post_id, delta)

    async def _add_to_counter(self, column: str, post_id: int, delta: int) -> int:
        # One atomic statement (the row lock on PostgreSQL, the write lock on SQLite):
        # concurrent likes never read-modify-write over each other.
        value = await self._db.fetchval(
            compose(
                "UPDATE posts SET", column, "=", column, "+ {} WHERE id = {} RETURNING", column
            ),
            delta,
            post_id,
        )
        if value is None:
            raise NotFound("no such post")
        return int(value)


class SqlLikeRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, like_id: int, post_id: int, user_id: int, at: datetime) -> bool:
        row = await self._db.fetchrow(
            "INSERT INTO likes (id, post_id, user_id, created_at) VALUES ({}, {}, {}, {}) "
            "ON CONFLICT DO NOTHING RETURNING id",
            like_id,
            post_id,
            user_id,
            at,
        )
        return row is not None

    async def remove(self, post_id: int, user_id: int) -> bool:
        row = await self._db.fetchrow(
            "DELETE FROM likes WHERE post_id = {} AND user_id = {} RETURNING id", post_id, user_id
        )
        return row is not None

    async def liked(self, user_id: int, post_ids: Sequence[int]) -> set[int]:
        ids = list(dict.fromkeys(post_ids))
        if not ids:
            return set()
        rows = await self._db.fetch(
            compose("SELECT post_id FROM likes WHERE user_id = {} AND post_id IN", in_list(ids)),
            user_id,
            *ids,
        )
        return {int(row["post_id"]) for row in rows}

    async def likers(self, post_id: int, page: PageRequest) -> list[Edge]:
        sql, args = paged("SELECT id, user_id FROM likes WHERE post_id = {}", [post_id], page)
        return [to_edge(row) for row in newest_first(await self._db.fetch(sql, *args), page)]


class SqlCommentRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, comment: Comment) -> None:
        await self._db.execute(
            "INSERT INTO comments (id, post_id, author_id, content, created_at) "
            "VALUES ({}, {}, {}, {}, {})",
            comment.id,
            comment.post_id,
            comment.author_id,
            comment.content,
            comment.created_at,
        )

    async def get(self, comment_id: int) -> Comment | None:
        row = await self._db.fetchrow(
            compose("SELECT", COMMENT_COLUMNS, "FROM comments WHERE id = {}"),
            comment_id,
        )
        return None if row is None else to_comment(row)

    async def get_many(self, comment_ids: Sequence[int]) -> dict[int, Comment]:
        ids = list(dict.fromkeys(comment_ids))
        if not ids:
            return {}
        rows = await self._db.fetch(
            compose("SELECT", COMMENT_COLUMNS, "FROM comments WHERE id IN", in_list(ids)), *ids
        )
        return {comment.id: comment for comment in map(to_comment, rows)}

    async def by_post(self, post_id: int, page: PageRequest) -> list[Comment]:
        sql, args = paged(
            compose("SELECT", COMMENT_COLUMNS, "FROM comments WHERE post_id = {}"),
            [post_id],
            page,
        )
        return [to_comment(row) for row in newest_first(await self._db.fetch(sql, *args), page)]
