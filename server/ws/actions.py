"""WebSocket actions: each op calls the very same domain service as its REST endpoint, so
rules and error codes are shared (one code path)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from channels import protocol as p
from domain.ids import parse_id
from domain.pagination import PageRequest
from domain.presenter import Presenter
from domain.services.posts import PostService
from domain.services.reading import FeedService, NotificationService, SearchService
from domain.services.social import SocialService
from domain.views import RelationshipView, UnreadCount, UserView
from server.ratelimit import RateLimiter


@dataclass(frozen=True, slots=True)
class ActionServices:
    social: SocialService
    posts: PostService
    feed: FeedService
    notifications: NotificationService
    search: SearchService
    presenter: Presenter
    # The REST per-user write limit, shared: a write costs the same budget on either path.
    writes: RateLimiter | None = None


class PageResult(msgspec.Struct):
    items: Any
    next_max_id: str | None


class Empty(msgspec.Struct):
    pass


Action = Callable[[ActionServices, int, Any], Awaitable[Any]]


def _page(limit: int | None, max_id: str | None) -> PageRequest:
    return PageRequest.of(limit=limit, max_id=None if max_id is None else parse_id(max_id))


def _next(ids: Sequence[int], page: PageRequest) -> str | None:
    # A short page is the last one: no cursor, so clients stop asking.
    return str(ids[-1]) if ids and len(ids) >= page.limit else None


async def _post_create(s: ActionServices, uid: int, r: p.PostCreate) -> Any:
    media = [parse_id(m, "media_ids") for m in r.media_ids or ()]
    post, _ = await s.posts.create(uid, r.content, media, r.idempotency_key)
    return await s.presenter.post(post, uid)


async def _post_delete(s: ActionServices, uid: int, r: p.PostDelete) -> Any:
    await s.posts.delete(parse_id(r.post_id, "post_id"), uid)
    return Empty()


async def _post_like(s: ActionServices, uid: int, r: p.PostLike) -> Any:
    return await s.presenter.post(await s.posts.like(parse_id(r.post_id, "post_id"), uid), uid)


async def _post_unlike(s: ActionServices, uid: int, r: p.PostUnlike) -> Any:
    return await s.presenter.post(await s.posts.unlike(parse_id(r.post_id, "post_id"), uid), uid)


async def _comment_create(s: ActionServices, uid: int, r: p.CommentCreate) -> Any:
    comment, _count = await s.posts.comment(parse_id(r.post_id, "post_id"), uid, r.content)
    views = await s.presenter.comments([comment])
    return views[0]


async def _follow(s: ActionServices, uid: int, r: p.UserFollow) -> Any:
    return RelationshipView.of(await s.social.follow(uid, parse_id(r.user_id, "user_id")))


async def _unfollow(s: ActionServices, uid: int, r: p.UserUnfollow) -> Any:
    return RelationshipView.of(await s.social.unfollow(uid, parse_id(r.user_id, "user_id")))


async def _block(s: ActionServices, uid: int, r: p.UserBlock) -> Any:
    return RelationshipView.of(await s.social.block(uid, parse_id(r.user_id, "user_id")))


async def _unblock(s: ActionServices, uid: int, r: p.UserUnblock) -> Any:
    return RelationshipView.of(await s.social.unblock(uid, parse_id(r.user_id, "user_id")))


async def _feed_page(s: ActionServices, uid: int, r: p.FeedPage) -> Any:
    page = _page(r.limit, r.max_id)
    posts = await s.feed.home(uid, page)
    items = await s.presenter.posts(posts, uid)
    return PageResult(items, _next([q.id for q in posts], page))


async def _notifications_page(s: ActionServices, uid: int, r: p.NotificationsPage) -> Any:
    page = _page(r.limit, r.max_id)
    items = await s.notifications.page(uid, uid, page)
    views = await s.presenter.notifications(items)
    return PageResult(views, _next([n.id for n in items], page))


async def _notifications_read(s: ActionServices, uid: int, r: p.NotificationsRead) -> Any:
    up_to = None if r.up_to_id is None else parse_id(r.up_to_id, "up_to_id")
    return UnreadCount(await s.notifications.mark_read(uid, up_to))


async def _search(s: ActionServices, uid: int, r: p.Search) -> Any:
    page = _page(r.limit, r.max_id)
    if r.type == "users":
        accounts = await s.search.users(r.q, uid, page)
        users = [UserView.of(a) for a in accounts]
        return PageResult(users, _next([a.id for a in accounts], page))
    posts = await s.search.posts(r.q, uid, page)
    views = await s.presenter.posts(posts, uid)
    return PageResult(views, _next([q.id for q in posts], page))


READS: frozenset[type[Any]] = frozenset({p.FeedPage, p.NotificationsPage, p.Search})

ACTIONS: dict[type[Any], Action] = {
    p.PostCreate: _post_create,
    p.PostDelete: _post_delete,
    p.PostLike: _post_like,
    p.PostUnlike: _post_unlike,
    p.CommentCreate: _comment_create,
    p.UserFollow: _follow,
    p.UserUnfollow: _unfollow,
    p.UserBlock: _block,
    p.UserUnblock: _unblock,
    p.FeedPage: _feed_page,
    p.NotificationsPage: _notifications_page,
    p.NotificationsRead: _notifications_read,
    p.Search: _search,
}
