"""Opening an authenticated socket, and the application-level heartbeat."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from plaza_client._rest import RestTransport
from plaza_client.errors import AuthError, ConnectionLost, NetworkError, PlazaError, error_from_http

if TYPE_CHECKING:
    from plaza_client.client import AsyncClient

__all__ = ["LINK_DEFAULTS", "keep_token_fresh", "open_socket", "serve_heartbeat"]

log = logging.getLogger("plaza_client.live")

# Options of the link, overridable per session: client.live(ping_interval=10, ...).
LINK_DEFAULTS: dict[str, Any] = {
    # websockets' own ping/pong: a pong must come back within ping_timeout of each ping,
    # so a dead TCP path is noticed within ping_interval + ping_timeout (~40 s). 20 s
    # matches uvicorn's server-side interval and stays under the ~60 s idle timeout of
    # common proxies and NATs, which would otherwise drop a quiet socket.
    "ping_interval": 20.0,
    "ping_timeout": 20.0,
    # The server's pong is sent by its WebSocket layer, not by Plaza's session; an op
    # round trip proves the session itself still reads and answers. Sent only after 30 s
    # without any frame (a busy socket needs no probe) and given 20 s to answer, so even a
    # half-dead link whose control frames still flow is dropped within about a minute.
    "idle_ping_after": 30.0,
    "app_ping_timeout": 20.0,
    # Upgrade handshake budget: a healthy server answers in milliseconds; 10 s tolerates
    # a cold start without leaving a reconnect hanging on a black-holed address.
    "open_timeout": 10.0,
    # How long to wait for the server's close frame after ours before dropping the link.
    "close_timeout": 5.0,
    # Largest frame accepted from the server. A page of 40 posts with media is tens of
    # KB; 4 MiB leaves room without letting a broken server exhaust memory.
    "max_size": 4 * 1024 * 1024,
}
# After a failed refresh, try again this soon: the server closes the socket (4401) when
# the token expires, so waiting long would turn a blip into a reconnect.
TOKEN_RETRY_S = 5.0
# With no known expiry (logged out, or the server gave none), look again this often.
TOKEN_IDLE_CHECK_S = 60.0


async def open_socket(client: AsyncClient, link: dict[str, Any]) -> tuple[ClientConnection, str]:
    """Connect to ws(s)://host/api/v1/ws with the access token in the Authorization header
    (never in the URL: URLs end up in access logs). An upgrade refused with 401 refreshes
    the token pair once and tries again. Returns the socket and the token it used."""
    rest = client.transport
    for attempt in range(2):
        tokens = rest.tokens
        if tokens is None:
            raise AuthError("not logged in", code="unauthenticated")
        if rest.expiring():
            tokens = await rest.refresh(stale_access_token=tokens.access_token)
        token = tokens.access_token
        try:
            ws = await connect(
                rest.ws_url,
                additional_headers={"Authorization": f"Bearer {token}"},
                user_agent_header="plaza-client/0.1",
                ping_interval=link["ping_interval"],
                ping_timeout=link["ping_timeout"],
                open_timeout=link["open_timeout"],
                close_timeout=link["close_timeout"],
                max_size=link["max_size"],
            )
        except InvalidStatus as exc:
            response = exc.response
            if response.status_code == 401 and attempt == 0:
                await rest.refresh(stale_access_token=token)
                continue
            try:
                body = msgspec.json.decode(response.body) if response.body else None
            except msgspec.DecodeError:
                body = None
            raise error_from_http(response.status_code, body, response.headers) from exc
        except InvalidURI as exc:
            raise PlazaError(str(exc), code="invalid_url") from exc
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise NetworkError(f"cannot open {rest.ws_url}: {exc!r}") from exc
        return ws, token
    raise AuthError("the server refused the refreshed token", code="unauthorized")


async def serve_heartbeat(
    ws: ClientConnection,
    last_frame: Callable[[], float],
    ping: Callable[[ClientConnection, float], Awaitable[None]],
    *,
    idle_after: float,
    reply_within: float,
) -> None:
    """Send an app-level `ping` op whenever nothing arrived for `idle_after` seconds;
    abort the connection (so the session reconnects) if no reply comes within
    `reply_within` seconds."""
    while True:
        idle = time.monotonic() - last_frame()
        if idle < idle_after:
            await asyncio.sleep(idle_after - idle)
            continue
        try:
            await ping(ws, reply_within)
        except TimeoutError:
            log.warning("no reply to ping within %g s: dropping the connection", reply_within)
            ws.transport.abort()
            return
        except ConnectionLost:
            return
        except PlazaError:
            pass  # an error reply is still a reply: the session is alive


async def keep_token_fresh(rest: RestTransport) -> None:
    """Refresh the access token shortly before it expires, for as long as a live session
    runs; the session's token listener then re-auths the socket with the new token, so
    the server never closes it for expiry. Cancelled when the session closes."""
    while True:
        refresh_at, tokens = rest.refresh_at, rest.tokens
        if refresh_at is None or tokens is None:
            await asyncio.sleep(TOKEN_IDLE_CHECK_S)
            continue
        wait = refresh_at - time.monotonic()
        if wait > 0:
            # Re-check at least every minute: another caller may rotate the pair meanwhile.
            await asyncio.sleep(min(wait, TOKEN_IDLE_CHECK_S))
            continue
        try:
            await rest.refresh(stale_access_token=tokens.access_token)
        except PlazaError as exc:
            log.info("token refresh failed (%s); retrying", exc)
            await asyncio.sleep(TOKEN_RETRY_S)
