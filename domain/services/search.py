"""Search over users and posts, filtered for the viewer's blocks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from domain import validation
from domain.errors import ValidationFailed
from domain.models import Account, Post
from domain.pagination import Page, PageRequest, fill_page
from domain.ports import SearchIndex
from domain.services.base import Context, hidden_from, post_list

SearchType = Literal["users", "posts"]


class SearchService:
    def __init__(self, ctx: Context, index: SearchIndex) -> None:
        self._ctx = ctx
        self._index = index

    async def users(self, q: str, viewer_id: int | None, page: PageRequest) -> Page[Account]:
        query = validation.search_query(q)
        hidden = await hidden_from(self._ctx, viewer_id)

        async def keep(ids: Sequence[int]) -> list[tuple[int, Account]]:
            accounts = await self._ctx.store.users.get_many(ids)
            return [(i, accounts[i]) for i in ids if i in accounts and i not in hidden]

        return await fill_page(page, lambda p: self._index.users(query, p), lambda i: i, keep)

    async def posts(self, q: str, viewer_id: int | None, page: PageRequest) -> Page[Post]:
        query = validation.search_query(q)
        hidden = await hidden_from(self._ctx, viewer_id)
        return await post_list(self._ctx, page, lambda p: self._index.posts(query, p), hidden)


def search_type(value: str | None) -> SearchType:
    if value == "users":
        return "users"
    if value in ("posts", None):
        return "posts"
    raise ValidationFailed("type must be 'users' or 'posts'", details={"field": "type"})
