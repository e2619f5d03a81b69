"""GET /search?q=&type=users|posts."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.params import QueryParameter

from domain.pagination import Page
from domain.services.search import search_type
from domain.views import PostView, UserView
from server.dependencies import PageDep, ServicesDep, ViewerDep
from server.pagination import rest_page


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
        found: Page[Any] = await services.lists.search(q or "", search_type(kind), viewer_id, page)
        return rest_page(request, found)
