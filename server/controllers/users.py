"""/users: profiles, a user's posts and follow lists, follow and block, notifications."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.params import JSONBody

from domain.ids import parse_id
from domain.models import ProfileChanges
from domain.views import (
    MeView,
    NotificationView,
    PostView,
    RelationshipView,
    UserView,
)
from server.dependencies import ActorDep, PageDep, PrincipalDep, ServicesDep, ViewerDep
from server.openapi import (
    BEARER,
    BODY,
    BY_ID,
    OPTIONAL_BEARER,
    WRITE,
    Bio,
    DisplayName,
    IdString,
    UserId,
    errors,
)
from server.pagination import rest_page


class ProfileIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The fields a user may change; anything else (id, username, email, counts, a
    password hash) is an unknown field and refused with 422, never silently ignored."""

    display_name: DisplayName | msgspec.UnsetType = msgspec.UNSET
    bio: Bio | msgspec.UnsetType = msgspec.UNSET
    avatar_media_id: IdString | msgspec.UnsetType | None = msgspec.UNSET

    def changes(self) -> ProfileChanges:
        avatar: int | msgspec.UnsetType | None = msgspec.UNSET
        if isinstance(self.avatar_media_id, str):
            avatar = parse_id(self.avatar_media_id, "avatar_media_id")
        elif self.avatar_media_id is None:
            avatar = None
        return ProfileChanges(display_name=self.display_name, bio=self.bio, avatar_media_id=avatar)


class UsersController(Controller):
    path = "/users"
    tags = ("users",)

    @get("/me", security=BEARER, responses=errors(401))
    async def me(self, principal: PrincipalDep, services: ServicesDep) -> MeView:
        account = await services.accounts.get(principal.user_id, principal.user_id)
        return MeView.of_me(account)

    @get("/{user_id:str}", security=OPTIONAL_BEARER, responses=errors(401, *BY_ID))
    async def get_user(self, user_id: UserId, viewer: ViewerDep, services: ServicesDep) -> UserView:
        uid = parse_id(user_id, "user_id")
        viewer_id = viewer.user_id if viewer else None
        account = await services.accounts.get(uid, viewer_id)
        # Your own profile includes your email; nobody else's does.
        return MeView.of_me(account) if viewer_id == uid else UserView.of(account)

    # PUT behaves as PATCH: only the fields sent change. A profile has no field a client
    # should be forced to resend, and a stale full copy must not undo another device's edit.
    @put("/{user_id:str}", security=BEARER, responses=errors(*BODY, *WRITE, 403, *BY_ID))
    async def replace_profile(
        self,
        user_id: UserId,
        data: JSONBody[ProfileIn],
        actor: ActorDep,
        services: ServicesDep,
    ) -> MeView:
        return await self._update(user_id, data, actor, services)

    @patch("/{user_id:str}", security=BEARER, responses=errors(*BODY, *WRITE, 403, *BY_ID))
    async def update_profile(
        self,
        user_id: UserId,
        data: JSONBody[ProfileIn],
        actor: ActorDep,
        services: ServicesDep,
    ) -> MeView:
        return await self._update(user_id, data, actor, services)

    async def _update(
        self, user_id: str, data: JSONBody[ProfileIn], actor: ActorDep, services: ServicesDep
    ) -> MeView:
        uid = parse_id(user_id, "user_id")
        changes = data.changes()
        account = await services.accounts.update_profile(uid, actor.user_id, changes)
        return MeView.of_me(account)

    @get("/{user_id:str}/posts", security=OPTIONAL_BEARER, responses=errors(401, *BY_ID))
    async def posts(
        self,
        request: Request[Any, Any, Any],
        user_id: UserId,
        viewer: ViewerDep,
        page: PageDep,
        services: ServicesDep,
    ) -> Response[list[PostView]]:
        viewer_id = viewer.user_id if viewer else None
        posts = await services.lists.user_posts(parse_id(user_id, "user_id"), viewer_id, page)
        return rest_page(request, posts)

    @get("/{user_id:str}/followers", security=OPTIONAL_BEARER, responses=errors(401, *BY_ID))
    async def followers(
        self,
        request: Request[Any, Any, Any],
        user_id: UserId,
        viewer: ViewerDep,
        page: PageDep,
        services: ServicesDep,
    ) -> Response[list[UserView]]:
        viewer_id = viewer.user_id if viewer else None
        users = await services.lists.followers(parse_id(user_id, "user_id"), viewer_id, page)
        return rest_page(request, users)

    @get("/{user_id:str}/following", security=OPTIONAL_BEARER, responses=errors(401, *BY_ID))
    async def following(
        self,
        request: Request[Any, Any, Any],
        user_id: UserId,
        viewer: ViewerDep,
        page: PageDep,
        services: ServicesDep,
    ) -> Response[list[UserView]]:
        viewer_id = viewer.user_id if viewer else None
        users = await services.lists.following(parse_id(user_id, "user_id"), viewer_id, page)
        return rest_page(request, users)

    @get("/{user_id:str}/relationship", security=BEARER, responses=errors(401, *BY_ID))
    async def relationship(
        self, user_id: UserId, principal: PrincipalDep, services: ServicesDep
    ) -> RelationshipView:
        rel = await services.social.relationship(principal.user_id, parse_id(user_id, "user_id"))
        return RelationshipView.of(rel)

    @post(
        "/{user_id:str}/follow",
        status_code=200,
        security=BEARER,
        responses=errors(*WRITE, 403, *BY_ID),
    )
    async def follow(
        self, user_id: UserId, actor: ActorDep, services: ServicesDep
    ) -> RelationshipView:
        rel = await services.social.follow(actor.user_id, parse_id(user_id, "user_id"))
        return RelationshipView.of(rel)

    @delete(
        "/{user_id:str}/follow", status_code=200, security=BEARER, responses=errors(*WRITE, *BY_ID)
    )
    async def unfollow(
        self, user_id: UserId, actor: ActorDep, services: ServicesDep
    ) -> RelationshipView:
        rel = await services.social.unfollow(actor.user_id, parse_id(user_id, "user_id"))
        return RelationshipView.of(rel)

    @post(
        "/{user_id:str}/block", status_code=200, security=BEARER, responses=errors(*WRITE, *BY_ID)
    )
    async def block(
        self, user_id: UserId, actor: ActorDep, services: ServicesDep
    ) -> RelationshipView:
        rel = await services.social.block(actor.user_id, parse_id(user_id, "user_id"))
        return RelationshipView.of(rel)

    @delete(
        "/{user_id:str}/block", status_code=200, security=BEARER, responses=errors(*WRITE, *BY_ID)
    )
    async def unblock(
        self, user_id: UserId, actor: ActorDep, services: ServicesDep
    ) -> RelationshipView:
        rel = await services.social.unblock(actor.user_id, parse_id(user_id, "user_id"))
        return RelationshipView.of(rel)

    @get("/{user_id:str}/notifications", security=BEARER, responses=errors(401, 403, *BY_ID))
    async def notifications(
        self,
        request: Request[Any, Any, Any],
        user_id: UserId,
        principal: PrincipalDep,
        page: PageDep,
        services: ServicesDep,
    ) -> Response[list[NotificationView]]:
        owner = parse_id(user_id, "user_id")
        notifications = await services.lists.notifications(owner, principal.user_id, page)
        return rest_page(request, notifications)
