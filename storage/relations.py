"""RelationRepository on SQL: follows and blocks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.models import Edge, Relationship
from domain.pagination import PageRequest
from storage.db import Database, compose, in_list
from storage.rows import newest_first, paged, to_edge


class SqlRelationRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def follow(self, edge_id: int, follower_id: int, followed_id: int, at: datetime) -> bool:
        row = await self._db.fetchrow(
            "INSERT INTO follows (id, follower_id, followed_id, created_at) "
            "VALUES ({}, {}, {}, {}) ON CONFLICT DO NOTHING RETURNING id",
            edge_id,
            follower_id,
            followed_id,
            at,
        )
        return row is not None

    async def unfollow(self, follower_id: int, followed_id: int) -> bool:
        row = await self._db.fetchrow(
            "DELETE FROM follows WHERE follower_id = {} AND followed_id = {} RETURNING id",
            follower_id,
            followed_id,
        )
        return row is not None

    async def block(self, edge_id: int, blocker_id: int, blocked_id: int, at: datetime) -> bool:
        row = await self._db.fetchrow(
            "INSERT INTO blocks (id, blocker_id, blocked_id, created_at) "
            "VALUES ({}, {}, {}, {}) ON CONFLICT DO NOTHING RETURNING id",
            edge_id,
            blocker_id,
            blocked_id,
            at,
        )
        return row is not None

    async def unblock(self, blocker_id: int, blocked_id: int) -> bool:
        row = await self._db.fetchrow(
            "DELETE FROM blocks WHERE blocker_id = {} AND blocked_id = {} RETURNING id",
            blocker_id,
            blocked_id,
        )
        return row is not None

    async def relationship(self, viewer_id: int, other_id: int) -> Relationship:
        # One round trip; EXISTS is a boolean on PostgreSQL and 0/1 on SQLite.
        row = await self._db.fetchrow(
            "SELECT "
            "EXISTS (SELECT 1 FROM follows WHERE follower_id = {} AND followed_id = {}) AS a, "
            "EXISTS (SELECT 1 FROM follows WHERE follower_id = {} AND followed_id = {}) AS b, "
            "EXISTS (SELECT 1 FROM blocks WHERE blocker_id = {} AND blocked_id = {}) AS c, "
            "EXISTS (SELECT 1 FROM blocks WHERE blocker_id = {} AND blocked_id = {}) AS d",
            viewer_id,
            other_id,
            other_id,
            viewer_id,
            viewer_id,
            other_id,
            other_id,
            viewer_id,
        )
        assert row is not None
        return Relationship(
            user_id=other_id,
            following=bool(row["a"]),
            followed_by=bool(row["b"]),
            blocking=bool(row["c"]),
            blocked_by=bool(row["d"]),
        )

    async def blocked_either_way(self, a: int, b: int) -> bool:
        row = await self._db.fetchrow(
            "SELECT 1 AS x FROM blocks WHERE (blocker_id = {} AND blocked_id = {}) "
            "OR (blocker_id = {} AND blocked_id = {}) LIMIT 1",
            a,
            b,
            b,
            a,
        )
        return row is not None

    async def block_set(self, user_id: int) -> set[int]:
        rows = await self._db.fetch(
            "SELECT blocked_id AS other FROM blocks WHERE blocker_id = {} "
            "UNION SELECT blocker_id AS other FROM blocks WHERE blocked_id = {}",
            user_id,
            user_id,
        )
        return {int(row["other"]) for row in rows}

    async def blocks_involving(self, user_ids: Sequence[int]) -> set[tuple[int, int]]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return set()
        rows = await self._db.fetch(
            compose(
                "SELECT blocker_id, blocked_id FROM blocks WHERE blocker_id IN",
                in_list(ids),
                "UNION SELECT blocker_id, blocked_id FROM blocks WHERE blocked_id IN",
                in_list(ids),
            ),
            *ids,
            *ids,
        )
        return {(int(row["blocker_id"]), int(row["blocked_id"])) for row in rows}

    async def followers(self, user_id: int, page: PageRequest) -> list[Edge]:
        sql, args = paged(
            "SELECT id, follower_id AS user_id FROM follows WHERE followed_id = {}",
            [user_id],
            page,
        )
        return [to_edge(row) for row in newest_first(await self._db.fetch(sql, *args), page)]

    async def following(self, user_id: int, page: PageRequest) -> list[Edge]:
        sql, args = paged(
            "SELECT id, followed_id AS user_id FROM follows WHERE follower_id = {}",
            [user_id],
            page,
        )
        return [to_edge(row) for row in newest_first(await self._db.fetch(sql, *args), page)]

    async def follower_ids(self, user_id: int) -> list[int]:
        rows = await self._db.fetch(
            "SELECT follower_id FROM follows WHERE followed_id = {} AND follower_id NOT IN "
            "(SELECT blocked_id FROM blocks WHERE blocker_id = {} "
            "UNION SELECT blocker_id FROM blocks WHERE blocked_id = {})",
            user_id,
            user_id,
            user_id,
        )
        return [int(row["follower_id"]) for row in rows]
