"""Cursor pagination with Mastodon's semantics; ids are the cursors (they are time-ordered).

`PageRequest` is what a client asks for, `Page` what every list answers (REST turns it into
a JSON array and a `Link` header, the WebSocket into `{"items", "next_max_id"}`), and
`fill_page` is how a list that hides some rows (blocks, deletions) still answers full pages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import msgspec

from domain.errors import ValidationFailed

DEFAULT_LIMIT = 20
# Larger requests are clamped, not refused: a client asking for 100 gets 40 (Mastodon's
# own cap), which bounds the cost of one hydration query.
MAX_LIMIT = 40

T = TypeVar("T")
V = TypeVar("V")


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


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list, newest first, with the cursors of the rows behind its items.

    The cursors are row ids, which are not always the items' ids (a follower list pages by
    follow id, not by user id). `full` says the list may go on: a short page is the last.
    """

    items: list[T]
    newest_cursor: int | None
    oldest_cursor: int | None
    full: bool

    @property
    def next_max_id(self) -> str | None:
        """The cursor of the next (older) page; None on the last page, so clients stop."""
        return str(self.oldest_cursor) if self.full and self.oldest_cursor is not None else None

    @classmethod
    def of(cls, rows: Sequence[T], cursor: Callable[[T], int], page: PageRequest) -> Page[T]:
        """The page of rows read with `page` from a list that hides nothing."""
        if not rows:
            return cls([], None, None, False)
        return cls(list(rows), cursor(rows[0]), cursor(rows[-1]), len(rows) >= page.limit)

    def map(self, items: list[V]) -> Page[V]:
        """The same page with its items replaced (presented), cursors kept."""
        return Page(items, self.newest_cursor, self.oldest_cursor, self.full)


async def fill_page(
    page: PageRequest,
    fetch: Callable[[PageRequest], Awaitable[Sequence[T]]],
    cursor: Callable[[T], int],
    keep: Callable[[Sequence[T]], Awaitable[Sequence[tuple[int, V]]]],
) -> Page[V]:
    """Read a list through a filter and still answer a full page.

    `fetch(request)` reads rows newest first with `apply_page` semantics; `cursor(row)` is a
    row's id; `keep(rows)` hydrates a batch and answers `(cursor, item)` for each row the
    viewer may see. A page whose rows were all hidden must not come back empty (clients
    read that as the end), so reading goes on, a full batch at a time, until the page is
    full or the source is exhausted. The next cursor is the last row kept: rows skipped
    after it are simply read again for the next page.
    """
    kept: list[tuple[int, V]] = []
    request = page
    while True:
        rows = await fetch(request)
        kept.extend(await keep(rows))
        if len(rows) < request.limit or len(kept) >= page.limit:
            break
        ids = [cursor(row) for row in rows]
        # Walk on in the page's direction: forward from the newest row read (min_id), else
        # back from the oldest one.
        if page.min_id is not None:
            request = PageRequest(
                limit=MAX_LIMIT, max_id=page.max_id, since_id=page.since_id, min_id=max(ids)
            )
        else:
            request = PageRequest(limit=MAX_LIMIT, max_id=min(ids), since_id=page.since_id)
    kept.sort(key=lambda pair: pair[0], reverse=True)
    # min_id pages forward: the oldest `limit` items after it, still newest first.
    chosen = kept[-page.limit :] if page.min_id is not None else kept[: page.limit]
    if not chosen:
        return Page([], None, None, False)
    return Page(
        [item for _, item in chosen], chosen[0][0], chosen[-1][0], len(chosen) >= page.limit
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
