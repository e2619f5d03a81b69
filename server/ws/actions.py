"""WebSocket actions: each op calls the very same domain service as its REST endpoint, so
rules, limits and error codes are shared (one code path); lists go through the same
`ListService` as REST and leave as `{"items", "next_max_id"}`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from domain.ids import parse_id
from domain.pagination import Page, PageRequest
from domain.views import RelationshipView, UnreadCount
from server.container import Services
from server.ws import ops


class PageResult(msgspec.Struct):
    """A list over the WebSocket: the items and the cursor of the next (older) page."""

    items: list[Any]
    next_max_id: str | None

    @classmethod
    def of(cls, page: Page[Any]) -> PageResult:
        return cls(page.items, page.next_max_id)


class Empty(msgspec.Struct):
    pass


Action = Callable[[Services, int, Any], Awaitable[Any]]


def _page(limit: int | None, max_id: str | None) -> PageRequest:
    return PageRequest.of(
        limit=limit, max_id=None if max_id is None else parse_id(max_id, "max_id")
    )


async def _post_create(s: Services, uid: int, r: ops.PostCreate) -> Any:
    media = [parse_id(m, "media_ids") for m in r.media_ids or ()]
    post, created = await s.posts.create(uid, r.content, media, r.idempotency_key)
    return await s.presenter.post(post, uid, new=created)


async def _post_delete(s: Services, uid: int, r: ops.PostDelete) -> Any:
    await s.posts.delete(parse_id(r.post_id, "post_id"), uid)
    return Empty()


async def _post_like(s: Services, uid: int, r: ops.PostLike) -> Any:
    return await s.presenter.post(await s.posts.like(parse_id(r.post_id, "post_id"), uid), uid)


async def _post_unlike(s: Services, uid: int, r: ops.PostUnlike) -> Any:
    return await s.presenter.post(await s.posts.unlike(parse_id(r.post_id, "post_id"), uid), uid)


async def _comment_create(s: Services, uid: int, r: ops.CommentCreate) -> Any:
    comment, _count = await s.posts.comment(parse_id(r.post_id, "post_id"), uid, r.content)
    return await s.presenter.comment(comment)


async def _follow(s: Services, uid: int, r: ops.UserFollow) -> Any:
    return RelationshipView.of(await s.social.follow(uid, parse_id(r.user_id, "user_id")))


async def _unfollow(s: Services, uid: int, r: ops.UserUnfollow) -> Any:
    return RelationshipView.of(await s.social.unfollow(uid, parse_id(r.user_id, "user_id")))


async def _block(s: Services, uid: int, r: ops.UserBlock) -> Any:
    return RelationshipView.of(await s.social.block(uid, parse_id(r.user_id, "user_id")))


async def _unblock(s: Services, uid: int, r: ops.UserUnblock) -> Any:
    return RelationshipView.of(await s.social.unblock(uid, parse_id(r.user_id, "user_id")))


async def _feed_page(s: Services, uid: int, r: ops.FeedPage) -> Any:
    return PageResult.of(await s.lists.home_feed(uid, _page(r.limit, r.max_id)))


async def _notifications_page(s: Services, uid: int, r: ops.NotificationsPage) -> Any:
    return PageResult.of(await s.lists.notifications(uid, uid, _page(r.limit, r.max_id)))


async def _notifications_read(s: Services, uid: int, r: ops.NotificationsRead) -> Any:
    up_to = None if r.up_to_id is None else parse_id(r.up_to_id, "up_to_id")
    return UnreadCount(await s.notifications.mark_read(uid, up_to))


async def _search(s: Services, uid: int, r: ops.Search) -> Any:
    return PageResult.of(await s.lists.search(r.q, r.type, uid, _page(r.limit, r.max_id)))


READS: frozenset[type[Any]] = frozenset({ops.FeedPage, ops.NotificationsPage, ops.Search})

# The bucket of `RateLimits` each write spends on top of `writes`, as its REST twin does.
BUCKETS: dict[type[Any], str] = {
    ops.PostCreate: "posts",
    ops.PostLike: "interactions",
    ops.PostUnlike: "interactions",
    ops.CommentCreate: "interactions",
}

ACTIONS: dict[type[Any], Action] = {
    ops.PostCreate: _post_create,
    ops.PostDelete: _post_delete,
    ops.PostLike: _post_like,
    ops.PostUnlike: _post_unlike,
    ops.CommentCreate: _comment_create,
    ops.UserFollow: _follow,
    ops.UserUnfollow: _unfollow,
    ops.UserBlock: _block,
    ops.UserUnblock: _unblock,
    ops.FeedPage: _feed_page,
    ops.NotificationsPage: _notifications_page,
    ops.NotificationsRead: _notifications_read,
    ops.Search: _search,
}
