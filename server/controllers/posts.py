"""/posts: create (idempotent with a key), read, delete, likes and comments."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, JSONBody

from domain import validation
from domain.ids import parse_id
from domain.views import CommentView, PostView, UserView
from server.dependencies import ActorDep, PageDep, ServicesDep, ViewerDep
from server.openapi import (
    BEARER,
    BODY,
    BY_ID,
    IDEMPOTENCY_KEY_PATTERN,
    OPTIONAL_BEARER,
    WRITE,
    CommentText,
    PostId,
    PostText,
    errors,
    id_list,
)
from server.pagination import rest_page


class PostIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    content: PostText
    # Ids travel as strings (a 64-bit id loses precision as a JavaScript number).
    media_ids: Annotated[list[str], id_list(validation.MEDIA_PER_POST_MAX)] = msgspec.field(
        default_factory=list
    )

    def media(self) -> list[int]:
        return [parse_id(m, "media_ids") for m in self.media_ids]


class CommentIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    content: CommentText


IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        description="Retrying with the same key returns the first post instead of a second",
        schema_extra={"one_of": None, "type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
    ),
]


class PostsController(Controller):
    path = "/posts"
    tags = ("posts",)

    @post(
        "/",
        security=BEARER,
        responses={
            # The replay of a key already used: the post it created, not a second one.
            200: ResponseSpec(
                PostView, description="Replayed: the post this key created", generate_examples=False
            ),
            **errors(*BODY, *WRITE),
        },
    )
    async def create(
        self,
        data: JSONBody[PostIn],
        actor: ActorDep,
        services: ServicesDep,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[PostView]:
        await services.limits.posts.hit(str(actor.user_id))
        created_post, created = await services.posts.create(
            actor.user_id, data.content, data.media(), idempotency_key
        )
        view = await services.presenter.post(created_post, actor.user_id, new=created)
        # 201 for a new post; 200 when the key was seen: the client learns it was a replay.
        return Response(view, status_code=201 if created else 200)

    @get("/{post_id:str}", security=OPTIONAL_BEARER, responses=errors(401, *BY_ID))
    async def get_post(self, post_id: PostId, viewer: ViewerDep, services: ServicesDep) -> PostView:
        viewer_id = viewer.user_id if viewer else None
        found = await services.posts.get(parse_id(post_id, "post_id"), viewer_id)
        return await services.presenter.post(found, viewer_id)

    @delete(
        "/{post_id:str}", status_code=204, security=BEARER, responses=errors(*WRITE, 403, *BY_ID)
    )
    async def delete_post(self, post_id: PostId, actor: ActorDep, services: ServicesDep) -> None:
        await services.posts.delete(parse_id(post_id, "post_id"), actor.user_id)

    @post(
        "/{post_id:str}/likes", status_code=200, security=BEARER, responses=errors(*WRITE, *BY_ID)
    )
    async def like(self, post_id: PostId, actor: ActorDep, services: ServicesDep) -> PostView:
        await services.limits.interactions.hit(str(actor.user_id))
        liked = await services.posts.like(parse_id(post_id, "post_id"), actor.user_id)
        return await services.presenter.post(liked, actor.user_id)

    @delete(
        "/{post_id:str}/likes", status_code=200, security=BEARER, responses=errors(*WRITE, *BY_ID)
    )
    async def unlike(self, post_id: PostId, actor: ActorDep, services: ServicesDep) -> PostView:
        await services.limits.interactions.hit(str(actor.user_id))
        unliked = await services.posts.unlike(parse_id(post_id, "post_id"), actor.user_id)
        return await services.presenter.post(unliked, actor.user_id)

    @get("/{post_id:str}/likes", security=OPTIONAL_BEARER, responses=errors(401, *BY_ID))
    async def likers(
        self,
        request: Request[Any, Any, Any],
        post_id: PostId,
        viewer: ViewerDep,
        page: PageDep,
        services: ServicesDep,
    ) -> Response[list[UserView]]:
        viewer_id = viewer.user_id if viewer else None
        likers = await services.lists.likers(parse_id(post_id, "post_id"), viewer_id, page)
        return rest_page(request, likers)

    @post(
        "/{post_id:str}/comments",
        status_code=201,
        security=BEARER,
        responses=errors(*BODY, *WRITE, *BY_ID),
    )
    async def comment(
        self,
        post_id: PostId,
        data: JSONBody[CommentIn],
        actor: ActorDep,
        services: ServicesDep,
    ) -> CommentView:
        await services.limits.interactions.hit(str(actor.user_id))
        created, _count = await services.posts.comment(
            parse_id(post_id, "post_id"), actor.user_id, data.content
        )
        return await services.presenter.comment(created)

    @get("/{post_id:str}/comments", security=OPTIONAL_BEARER, responses=errors(401, *BY_ID))
    async def comments(
        self,
        request: Request[Any, Any, Any],
        post_id: PostId,
        viewer: ViewerDep,
        page: PageDep,
        services: ServicesDep,
    ) -> Response[list[CommentView]]:
        viewer_id = viewer.user_id if viewer else None
        comments = await services.lists.comments(parse_id(post_id, "post_id"), viewer_id, page)
        return rest_page(request, comments)
