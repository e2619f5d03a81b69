"""GET /api/v1/ws: the WebSocket endpoint."""

from __future__ import annotations

from typing import Any

from litestar import WebSocket, websocket
from litestar.handlers import WebsocketRouteHandler

from server.dependencies import ServicesDep
from server.ws.session import Session

# Closing before accepting makes the ASGI server answer the upgrade with HTTP 403.
_REFUSED = 1008


def origin_allowed(origin: str, socket: WebSocket[Any, Any, Any], allowed: frozenset[str]) -> bool:
    """Browsers send Origin; it must be on the allow-list or be this server itself.
    Clients without Origin (SDKs, servers) are not subject to cross-site attacks."""
    origin = origin.rstrip("/").lower()
    if origin in allowed or "*" in allowed:
        return True
    host = socket.headers.get("host", "").lower()
    scheme = "https" if socket.url.scheme == "wss" else "http"
    return bool(host) and origin == f"{scheme}://{host}"


def make_ws_endpoint(allowed_origins: frozenset[str]) -> WebsocketRouteHandler:
    @websocket("/ws", name="ws")
    async def ws_endpoint(socket: WebSocket[Any, Any, Any], services: ServicesDep) -> None:
        origin = socket.headers.get("origin")
        if origin is not None and not origin_allowed(origin, socket, allowed_origins):
            await socket.close(code=_REFUSED, reason="origin not allowed")
            return
        await Session(socket, services).run()

    return ws_endpoint
