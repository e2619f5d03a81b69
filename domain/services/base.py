"""What every service needs: the store, a clock and an id generator."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import NotFound
from domain.models import Account, Edge, Post
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


async def visible_edges(
    ctx: Context, edges: list[Edge], viewer_id: int | None
) -> tuple[list[Edge], dict[int, Account]]:
    """A user list (followers, following, likers) with its accounts, minus the users in a
    block relation with the viewer. The edges all stay, so the page cursors stay exact."""
    hidden = await ctx.store.relations.block_set(viewer_id) if viewer_id is not None else set()
    accounts = await ctx.store.users.get_many([e.user_id for e in edges])
    return edges, {uid: a for uid, a in accounts.items() if uid not in hidden}
