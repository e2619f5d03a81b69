"""Every list of the API, presented: viewer → service → present → page.

REST controllers and WebSocket actions both answer lists through these methods, so a
list filters, pages and renders the same way on either path; only the envelope differs
(a JSON array and a `Link` header, or `{"items", "next_max_id"}`).
"""

from __future__ import annotations

from domain.models import Account, Post
from domain.pagination import Page, PageRequest
from domain.services.feed import FeedService
from domain.services.notifications import NotificationService
from domain.services.posts import PostService
from domain.services.search import SearchService, SearchType
from domain.services.social import SocialService
from domain.views import CommentView, NotificationView, PostView, Presenter, UserView


class ListService:
    def __init__(
        self,
        *,
        presenter: Presenter,
        posts: PostService,
        social: SocialService,
        feed: FeedService,
        notifications: NotificationService,
        search: SearchService,
    ) -> None:
        self._present = presenter
        self._posts = posts
        self._social = social
        self._feed = feed
        self._notifications = notifications
        self._search = search

    async def home_feed(self, viewer_id: int, page: PageRequest) -> Page[PostView]:
        found = await self._feed.home_seen(viewer_id, page)
        return found.map(await self._present.seen_posts(found.items))

    async def user_posts(
        self, user_id: int, viewer_id: int | None, page: PageRequest
    ) -> Page[PostView]:
        found = await self._posts.by_author(user_id, viewer_id, page)
        return await self._post_views(found, viewer_id)

    async def followers(
        self, user_id: int, viewer_id: int | None, page: PageRequest
    ) -> Page[UserView]:
        return _user_views(await self._social.followers(user_id, viewer_id, page))

    async def following(
        self, user_id: int, viewer_id: int | None, page: PageRequest
    ) -> Page[UserView]:
        return _user_views(await self._social.following(user_id, viewer_id, page))

    async def likers(
        self, post_id: int, viewer_id: int | None, page: PageRequest
    ) -> Page[UserView]:
        return _user_views(await self._posts.likers(post_id, viewer_id, page))

    async def comments(
        self, post_id: int, viewer_id: int | None, page: PageRequest
    ) -> Page[CommentView]:
        found = await self._posts.comments(post_id, viewer_id, page)
        return found.map(await self._present.comments(found.items))

    async def notifications(
        self, owner_id: int, viewer_id: int, page: PageRequest
    ) -> Page[NotificationView]:
        found = await self._notifications.page(owner_id, viewer_id, page)
        return found.map(await self._present.notifications(found.items))

    async def search(
        self, q: str, kind: SearchType, viewer_id: int | None, page: PageRequest
    ) -> Page[UserView] | Page[PostView]:
        if kind == "users":
            return _user_views(await self._search.users(q, viewer_id, page))
        return await self._post_views(await self._search.posts(q, viewer_id, page), viewer_id)

    async def _post_views(self, found: Page[Post], viewer_id: int | None) -> Page[PostView]:
        return found.map(await self._present.posts(found.items, viewer_id))


def _user_views(found: Page[Account]) -> Page[UserView]:
    return found.map([UserView.of(account) for account in found.items])
