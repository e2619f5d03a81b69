"""Search: users by username/display name, posts by their words.

Posts: PostgreSQL matches the generated `search_vector` (tsvector, 'simple' config) with a
prefix tsquery; SQLite matches the FTS5 table `posts_fts`. Both take the user's words as
prefix terms that must all match ("ali bo" finds "Alice and Bob"). User input never
reaches either query syntax: the query is cut into runs of letters and digits first, so
operators, quotes and parentheses are just separators.

Users: `LIKE '%word%'` on the lowercased username and display name, the same SQL on both
engines (pg_trgm GIN indexes serve it on PostgreSQL). The pattern escapes % _ and \\ and
says ESCAPE '\\' (SQLite has no default escape character).

Results are newest first and paged by id like every other list.
"""

from __future__ import annotations

import re

from domain.pagination import PageRequest
from storage.db import Database
from storage.rows import newest_first, paged

_WORD = re.compile(r"[^\W_]+")
# A query of more words than this is cut: each word is one more index probe, and people
# do not search with paragraphs.
MAX_TERMS = 8


def words(query: str) -> list[str]:
    return _WORD.findall(query.lower())[:MAX_TERMS]


def like_pattern(text: str) -> str:
    """`%text%` with LIKE's wildcards and the escape character taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def fts5_query(terms: list[str]) -> str:
    # Each term quoted (an FTS5 string) and starred (prefix); juxtaposition means AND.
    return " ".join('"{}"*'.format(term.replace('"', '""')) for term in terms)


def tsquery(terms: list[str]) -> str:
    # Terms are letters and digits only, so they are safe as bare tsquery lexemes.
    return " & ".join(f"{term}:*" for term in terms)


class SqlSearchIndex:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def users(self, query: str, page: PageRequest) -> list[int]:
        text = query.strip().lower()
        if not text:
            return []
        pattern = like_pattern(text)
        sql, args = paged(
            "SELECT id FROM users WHERE (username_lower LIKE {} ESCAPE '\\' "
            "OR lower(display_name) LIKE {} ESCAPE '\\')",
            [pattern, pattern],
            page,
        )
        rows = newest_first(await self._db.fetch(sql, *args), page)
        return [int(row["id"]) for row in rows]

    async def posts(self, query: str, page: PageRequest) -> list[int]:
        terms = words(query)
        if not terms:
            return []
        if self._db.kind == "postgres":
            base = (
                "SELECT p.id AS id FROM posts p WHERE p.deleted_at IS NULL "
                "AND p.search_vector @@ to_tsquery('simple', {})"
            )
            sql, args = paged(base, [tsquery(terms)], page, column="p.id")
        else:
            base = (
                "SELECT p.id AS id FROM posts_fts JOIN posts p ON p.id = posts_fts.rowid "
                "WHERE posts_fts MATCH {} AND p.deleted_at IS NULL"
            )
            sql, args = paged(base, [fts5_query(terms)], page, column="p.id")
        rows = newest_first(await self._db.fetch(sql, *args), page)
        return [int(row["id"]) for row in rows]
