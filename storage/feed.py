"""The home feed pulled from SQL (the embedded FeedStore)."""

from __future__ import annotations

from domain.pagination import PageRequest
from storage.db import Database
from storage.rows import newest_first, paged

# Live posts by the user or anyone the user follows, minus authors in a block relation
# with the user either way. Blocks are filtered here as well as at read time so a page is
# not left short by ids the caller would drop.
_FEED_SQL = (
    "SELECT p.id AS id, p.author_id AS author_id FROM posts p WHERE p.deleted_at IS NULL "
    "AND (p.author_id = {} OR p.author_id IN "
    "(SELECT f.followed_id FROM follows f WHERE f.follower_id = {})) "
    "AND p.author_id NOT IN (SELECT b.blocked_id FROM blocks b WHERE b.blocker_id = {} "
    "UNION SELECT b2.blocker_id FROM blocks b2 WHERE b2.blocked_id = {})"
)


class SqlFeedStore:
    """FeedStore whose source of truth is SQL: every read is a pull, nothing is stored
    ahead, so the consumer's writes are no-ops. The Redis store falls back to it past its
    cached tail and while a feed is being rebuilt."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(self, user_id: int, page: PageRequest) -> list[int]:
        sql, args = paged(_FEED_SQL, [user_id] * 4, page, column="p.id")
        rows = newest_first(await self._db.fetch(sql, *args), page)
        return [int(row["id"]) for row in rows]

    async def entries(self, user_id: int, limit: int) -> list[tuple[int, int]]:
        """The newest `limit` (post id, author id) of the feed (a Redis feed's rebuild)."""
        sql, args = paged(_FEED_SQL, [user_id] * 4, PageRequest(limit=limit), column="p.id")
        return [(int(row["id"]), int(row["author_id"])) for row in await self._db.fetch(sql, *args)]

    async def post_created(self, post_id: int, author_id: int) -> None:
        return None

    async def post_deleted(self, post_id: int, author_id: int) -> None:
        return None

    async def follow_created(self, follow_id: int, follower_id: int, followed_id: int) -> None:
        return None

    async def follow_removed(self, follower_id: int, followed_id: int) -> None:
        return None

    async def block_created(self, blocker_id: int, blocked_id: int) -> None:
        return None
