"""Cursor pagination with Mastodon's semantics; ids are the cursors (they are time-ordered)."""

from __future__ import annotations

import msgspec

from domain.errors import ValidationFailed

DEFAULT_LIMIT = 20
# Larger requests are clamped, not refused: a client asking for 100 gets 40 (Mastodon's
# own cap), which bounds the cost of one hydration query.
MAX_LIMIT = 40


class PageRequest(msgspec.Struct, frozen=True, kw_only=True):
    """max_id: older than; since_id: the newest items newer than it; min_id: the items
    right after it (paging forward). Results are always newest first."""

    limit: int = DEFAULT_LIMIT
    max_id: int | None = None
    since_id: int | None = None
    min_id: int | None = None

    @classmethod
    def of(
        cls,
        *,
        limit: int | None = None,
        max_id: int | None = None,
        since_id: int | None = None,
        min_id: int | None = None,
    ) -> PageRequest:
        if limit is None:
            limit = DEFAULT_LIMIT
        if limit < 1:
            raise ValidationFailed("limit must be at least 1", details={"field": "limit"})
        for name, value in (("max_id", max_id), ("since_id", since_id), ("min_id", min_id)):
            if value is not None and value < 0:
                raise ValidationFailed(f"{name} must be a positive id", details={"field": name})
        return cls(limit=min(limit, MAX_LIMIT), max_id=max_id, since_id=since_id, min_id=min_id)

    def with_limit(self, limit: int) -> PageRequest:
        return PageRequest(
            limit=limit, max_id=self.max_id, since_id=self.since_id, min_id=self.min_id
        )


def apply_page(ids_newest_first: list[int], page: PageRequest) -> list[int]:
    """Reference semantics on an in-memory, newest-first list (used by fakes and tests)."""
    items = [
        i
        for i in ids_newest_first
        if (page.max_id is None or i < page.max_id)
        and (page.since_id is None or i > page.since_id)
        and (page.min_id is None or i > page.min_id)
    ]
    if page.min_id is not None:
        # The items right after min_id: take the oldest `limit`, then show newest first.
        return sorted(sorted(items)[: page.limit], reverse=True)
    return items[: page.limit]
