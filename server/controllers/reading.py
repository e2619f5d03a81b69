"""GET /feed, /search and the caller's notifications (read marks, unread count)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import JSONBody, QueryParameter

from domain.ids import parse_id
from domain.services.reading import search_type
from domain.views import PostView, UnreadCount, UserView
from server.di import PageDep, PrincipalDep, ServicesDep, ViewerDep
from server.pagination import paged


class ReadIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Mark read every unread notification, or only those with id <= up_to_id."""

    up_to_id: str | None = None


class FeedController(Controller):
    path = "/feed"
    tags = ("feed",)

    @get("/")
    async def home(
        self,
        request: Request[Any, Any, Any],
        principal: PrincipalDep,
        page: PageDep,
        services: ServicesDep,
    ) -> Response[list[PostView]]:
        posts = await services.feed.home(principal.user_id, page)
        views = await services.presenter.posts(posts, principal.user_id)
        return paged(request, views, [p.id for p in posts])


class SearchController(Controller):
    path = "/search"
    tags = ("search",)

    @get("/")
    async def search(
        self,
        request: Request[Any, Any, Any],
        viewer: ViewerDep,
        page: PageDep,
        services: ServicesDep,
        q: Annotated[str | None, QueryParameter(name="q", required=False)] = None,
        kind: Annotated[
            str | None, QueryParameter(name="type", required=False, description="users | posts")
        ] = None,
    ) -> Response[list[UserView]] | Response[list[PostView]]:
        viewer_id = viewer.user_id if viewer else None
        if search_type(kind) == "users":
            accounts = await services.search.users(q or "", viewer_id, page)
            users = [UserView.of(a) for a in accounts]
            return paged(request, users, [a.id for a in accounts])
        posts = await services.search.posts(q or "", viewer_id, page)
        views = await services.presenter.posts(posts, viewer_id)
        return paged(request, views, [p.id for p in posts])


class NotificationsController(Controller):
    """The list itself is GET /users/{id}/notifications (owner only), see users.py."""

    path = "/notifications"
    tags = ("notifications",)

    @post("/read", status_code=200)
    async def mark_read(
        self, principal: PrincipalDep, services: ServicesDep, data: JSONBody[ReadIn | None] = None
    ) -> UnreadCount:
        raw = data.up_to_id if data is not None else None
        up_to = parse_id(raw, "up_to_id") if raw is not None else None
        return UnreadCount(await services.notifications.mark_read(principal.user_id, up_to))

    @get("/unread_count")
    async def unread_count(self, principal: PrincipalDep, services: ServicesDep) -> UnreadCount:
        return UnreadCount(await services.notifications.unread_count(principal.user_id))
