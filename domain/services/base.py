"""What every service needs (the store, a clock, an id generator) and the visibility rules
they share: who may see a user or a post, and lists filtered for the viewer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from domain.errors import NotFound
from domain.models import Account, Edge, Post
from domain.pagination import Page, PageRequest, fill_page
from domain.ports import Clock, IdGenerator, Store


@dataclass(frozen=True, slots=True)
class Context:
    store: Store
    clock: Clock
    ids: IdGenerator


async def visible_user(ctx: Context, user_id: int, viewer_id: int | None) -> Account:
    """A user the viewer may see: 404 when missing or when that user blocked the viewer
    (a block hides you from the blocker, and 404 does not confirm the account exists)."""
    account = await ctx.store.users.get(user_id)
    if account is None:
        raise NotFound("user not found")
    if viewer_id is not None and viewer_id != user_id:
        rel = await ctx.store.relations.relationship(viewer_id, user_id)
        if rel.blocked_by:
            raise NotFound("user not found")
    return account


async def visible_post(ctx: Context, post_id: int, viewer_id: int | None) -> Post:
    """A live post the viewer may see: deleted posts and posts across a block are 404."""
    post = await ctx.store.posts.get(post_id)
    if post is None or post.deleted_at is not None:
        raise NotFound("post not found")
    if (
        viewer_id is not None
        and viewer_id != post.author_id
        and await ctx.store.relations.blocked_either_way(viewer_id, post.author_id)
    ):
        raise NotFound("post not found")
    return post


async def hidden_from(ctx: Context, viewer_id: int | None) -> set[int]:
    """Users in a block relation with the viewer either way (read-time filtering)."""
    return await ctx.store.relations.block_set(viewer_id) if viewer_id is not None else set()


async def user_list(
    ctx: Context,
    page: PageRequest,
    fetch: Callable[[PageRequest], Awaitable[Sequence[Edge]]],
    viewer_id: int | None,
) -> Page[Account]:
    """A user list (followers, following, likers) paged by its edges, minus the users in a
    block relation with the viewer; pages stay full (see fill_page)."""
    hidden = await hidden_from(ctx, viewer_id)

    async def keep(edges: Sequence[Edge]) -> list[tuple[int, Account]]:
        accounts = await ctx.store.users.get_many([e.user_id for e in edges])
        return [
            (e.id, accounts[e.user_id])
            for e in edges
            if e.user_id in accounts and e.user_id not in hidden
        ]

    return await fill_page(page, fetch, lambda e: e.id, keep)


async def post_list(
    ctx: Context,
    page: PageRequest,
    fetch: Callable[[PageRequest], Awaitable[Sequence[int]]],
    hidden: set[int],
) -> Page[Post]:
    """Post ids read through `fetch`, hydrated with one query, minus deleted posts and
    authors in `hidden`; pages stay full (see fill_page)."""

    async def keep(ids: Sequence[int]) -> list[tuple[int, Post]]:
        posts = await ctx.store.posts.get_many(ids)
        return [(i, posts[i]) for i in ids if i in posts and posts[i].author_id not in hidden]

    return await fill_page(page, fetch, lambda i: i, keep)
