"""The dependencies every controller may ask for by name.

`services` (the container on app.state), `page` (the paging query parameters) and the
auth trio `viewer` / `principal` / `actor` (see server.auth).
"""

from __future__ import annotations

from typing import cast

from litestar.datastructures import State
from litestar.di import Provide

from server.auth import provide_actor, provide_principal, provide_viewer
from server.pagination import provide_page
from server.services import Services


def provide_services(state: State) -> Services:
    return cast(Services, state.services)


DEPENDENCIES = {
    "services": Provide(provide_services, sync_to_thread=False),
    "page": Provide(provide_page, sync_to_thread=False),
    "viewer": Provide(provide_viewer),
    "principal": Provide(provide_principal),
    "actor": Provide(provide_actor),
}
