"""GET /search?q=&type=users|posts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from domain.pagination import Page
from domain.services.search import search_type
from domain.views import PostView, UserView
from server.dependencies import PageDep, ServicesDep, ViewerDep
from server.openapi import OPTIONAL_BEARER, SEARCH_QUERY, errors
from server.pagination import rest_page


class SearchController(Controller):
    path = "/search"
    tags = ("search",)

    @get(
        "/",
        security=OPTIONAL_BEARER,
        responses={
            200: ResponseSpec(
                list[UserView | PostView],
                description="Users or posts",
                generate_examples=False,
            ),
            **errors(401, 422),
        },
    )
    async def search(
        self,
        request: Request[Any, Any, Any],
        viewer: ViewerDep,
        page: PageDep,
        services: ServicesDep,
        q: Annotated[str, SEARCH_QUERY],
        kind: Annotated[
            Literal["users", "posts"] | None,
            QueryParameter(name="type", required=False, description="default posts"),
        ] = None,
    ) -> Response[list[UserView]] | Response[list[PostView]]:
        viewer_id = viewer.user_id if viewer else None
        found: Page[Any] = await services.lists.search(q, search_type(kind), viewer_id, page)
        return rest_page(request, found)
