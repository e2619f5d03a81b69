"""The access middleware: a request id, one access line and the HTTP metrics per request;
an id, an open and a close line and the socket metrics per WebSocket.

It wraps the whole app (Litestar's routing and exception handling included), not one
route: Litestar's own middleware only runs for matched routes, so 404s and 405s (what
scanners produce) would have no access line, metric or X-Request-ID. Litestar's Prometheus
integration (litestar.plugins.prometheus) is not used: its labels are `path`,
`status_code` and `app_name` and cannot be renamed, it keeps its metrics in a class-level
dict on the global registry (the first app's labels win for every later app in a
process), it also skips unmatched routes, and request ids and access lines need this
same wrap anyway.

The route label is Litestar's path template (`/api/v1/users/{user_id}`), never the raw
path; a request no route matched is labelled `unmatched`. /metrics itself is neither
counted nor logged: a scrape every 15 s would only add noise.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, cast

from litestar import Litestar

from server.logs import ACCESS, request_id
from server.metrics import Metrics
from server.proxies import TrustedProxies, client_ip, header, is_trusted
from server.ws.transport import DIRECT_TEXT, DirectText

__all__ = ["METRICS_PATH", "AccessMiddleware", "install"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

METRICS_PATH = "/metrics"
UNMATCHED = "unmatched"
# Methods a label may carry; any other verb a client invents counts as "other", so a
# client cannot mint label values.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# An id a trusted proxy passes on is kept if it looks like one (uuids, hex, base64url,
# dotted trace ids); anything else, or longer, would let a header inject into log lines.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_HEADER = b"x-request-id"

log = logging.getLogger("plaza.ws")


class AccessMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, trusted: TrustedProxies) -> None:
        self._app = app
        self._metrics = metrics
        self._trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self._app(scope, receive, send)

    def _request_id(self, scope: Scope) -> str:
        given = header(scope, _HEADER)
        if given is not None and _REQUEST_ID.fullmatch(given) and is_trusted(scope, self._trusted):
            return given
        # 128 random bits as 32 hex digits, like a uuid4's hex, in a quarter of its time.
        return secrets.token_hex(16)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = self._request_id(scope)
        token = request_id.set(rid)
        start = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering
        id_header = (_HEADER, rid.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        finally:
            try:
                self._record(scope, status, time.perf_counter() - start)
            finally:
                request_id.reset(token)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("path_template") or UNMATCHED
        if route == METRICS_PATH:
            return
        method = scope.get("method", "GET")
        label = method if method in METHODS else "other"
        metrics = self._metrics
        metrics.http_requests.labels(label, route, str(status)).inc()
        metrics.http_duration.labels(label, route).observe(seconds)
        duration_ms = round(seconds * 1000, 1)
        path = _loggable_path(scope)
        ACCESS.info(
            "%s %s %d %.1f ms",
            method,
            path,
            status,
            duration_ms,
            extra={
                "method": method,
                "route": route,
                "path": path,
                "status": status,
                "duration_ms": duration_ms,
                "client": client_ip(scope, self._trusted),
            },
        )

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = self._request_id(scope)
        token = request_id.set(rid)
        metrics = self._metrics
        tally = metrics.ws_frames_sent  # bound once: one addition per frame
        start = time.perf_counter()
        frames = 0
        accepted = False
        code: int | None = None
        id_header = (_HEADER, rid.encode("ascii"))
        # Frames written past ASGI (server/ws/transport.py) count themselves.
        direct: DirectText | None = (scope.get("extensions") or {}).get(DIRECT_TEXT)
        if direct is not None:
            direct.tally = tally

        async def watched_send(message: Message) -> None:
            nonlocal frames, accepted, code
            kind = message["type"]
            if kind == "websocket.send":
                frames += 1
                tally.value += 1
            elif kind == "websocket.accept":
                message["headers"] = [*message.get("headers", ()), id_header]
                accepted = True
                metrics.ws_connections.inc()
                client = client_ip(scope, self._trusted)
                log.info(
                    "websocket open from %s",
                    client,
                    extra={"route": scope.get("path_template") or UNMATCHED, "client": client},
                )
            elif kind == "websocket.close" and code is None:
                code = int(message.get("code", 1000))
                if not accepted:  # closed before accepting: the upgrade gets a 403
                    log.info("websocket refused (%d)", code, extra={"code": code})
            await send(message)

        async def watched_receive() -> Message:
            nonlocal code
            message = await receive()
            if message["type"] == "websocket.disconnect" and code is None:
                code = int(message.get("code") or 1005)
            return message

        try:
            await self._app(scope, watched_receive, watched_send)
        finally:
            try:
                if accepted:
                    metrics.ws_connections.dec()
                    sent = frames + (direct.frames if direct is not None else 0)
                    log.info(
                        "websocket closed %s after %.1f s, %d frames sent",
                        code if code is not None else "-",
                        time.perf_counter() - start,
                        sent,
                        extra={"code": code, "frames_sent": sent},
                    )
            finally:
                request_id.reset(token)


def _loggable_path(scope: Scope) -> str:
    """The path as the client sent it, without its query string (which may hold a secret
    a client wrongly put there; headers, Authorization included, are never logged). The
    raw, still percent-encoded bytes: a decoded %0A could forge a line of the text log."""
    raw = scope.get("raw_path")
    if not raw:
        path = str(scope.get("path", ""))
        return path if path.isprintable() else path.encode("unicode_escape").decode("ascii")
    return bytes(raw).split(b"?", 1)[0].decode("latin-1").encode("unicode_escape").decode()


def install(app: Litestar, metrics: Metrics, trusted: TrustedProxies) -> None:
    """Wrap everything the app does for a connection (routing, exception handling, CORS)
    in the access middleware. Litestar builds that handler once, in its constructor, and
    offers no hook outside its routing, hence the attribute."""
    app.asgi_handler = cast(Any, AccessMiddleware(cast(Any, app.asgi_handler), metrics, trusted))
    app.state.metrics = metrics  # for tests and tools: the app's own registry
