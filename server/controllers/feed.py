"""GET /feed: the caller's home feed."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get

from domain.views import PostView
from server.dependencies import PageDep, PrincipalDep, ServicesDep
from server.openapi import BEARER, errors
from server.pagination import rest_page


class FeedController(Controller):
    path = "/feed"
    tags = ("feed",)

    @get("/", security=BEARER, responses=errors(401, 422))
    async def home(
        self,
        request: Request[Any, Any, Any],
        principal: PrincipalDep,
        page: PageDep,
        services: ServicesDep,
    ) -> Response[list[PostView]]:
        return rest_page(request, await services.lists.home_feed(principal.user_id, page))
