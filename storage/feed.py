"""The home feed pulled from SQL (the embedded FeedStore)."""

from __future__ import annotations

from collections.abc import Sequence

from domain.pagination import PageRequest
from storage.db import Database
from storage.rows import newest_first, paged

# Live posts by the user or anyone the user follows, minus authors in a block relation
# with the user either way. Blocks are filtered here as well as at read time so a page is
# not left short by ids the caller would drop.
_FEED_SQL = (
    "SELECT p.id AS id FROM posts p WHERE p.deleted_at IS NULL "
    "AND (p.author_id = {} OR p.author_id IN "
    "(SELECT f.followed_id FROM follows f WHERE f.follower_id = {})) "
    "AND p.author_id NOT IN (SELECT b.blocked_id FROM blocks b WHERE b.blocker_id = {} "
    "UNION SELECT b2.blocker_id FROM blocks b2 WHERE b2.blocked_id = {})"
)


class SqlFeedStore:
    """FeedStore whose source of truth is SQL: nothing to fan out or retract (the Redis
    store of the scaled-out deployment writes on fan_out)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(self, user_id: int, page: PageRequest) -> list[int]:
        sql, args = paged(_FEED_SQL, [user_id] * 4, page, column="p.id")
        rows = newest_first(await self._db.fetch(sql, *args), page)
        return [int(row["id"]) for row in rows]

    async def fan_out(self, post_id: int, author_id: int, recipient_ids: Sequence[int]) -> None:
        return None

    async def retract(self, post_id: int, author_id: int, recipient_ids: Sequence[int]) -> None:
        return None
