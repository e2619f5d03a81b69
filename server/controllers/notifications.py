"""POST /notifications/read and GET /notifications/unread_count.

The list itself is GET /users/{id}/notifications (owner only), in users.py.
"""

from __future__ import annotations

import msgspec
from litestar import Controller, get, post
from litestar.params import JSONBody

from domain.ids import parse_id
from domain.views import UnreadCount
from server.dependencies import PrincipalDep, ServicesDep
from server.openapi import BEARER, BODY, IdString, OptionalBodyOperation, errors


class ReadIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Mark read every unread notification, or only those with id <= up_to_id."""

    up_to_id: IdString | None = None


class NotificationsController(Controller):
    path = "/notifications"
    tags = ("notifications",)

    @post(
        "/read",
        status_code=200,
        security=BEARER,
        responses=errors(*BODY, 401),
        operation_class=OptionalBodyOperation,
    )
    async def mark_read(
        self, principal: PrincipalDep, services: ServicesDep, data: JSONBody[ReadIn | None] = None
    ) -> UnreadCount:
        raw = data.up_to_id if data is not None else None
        up_to = parse_id(raw, "up_to_id") if raw is not None else None
        return UnreadCount(await services.notifications.mark_read(principal.user_id, up_to))

    @get("/unread_count", security=BEARER, responses=errors(401))
    async def unread_count(self, principal: PrincipalDep, services: ServicesDep) -> UnreadCount:
        return UnreadCount(await services.notifications.unread_count(principal.user_id))
