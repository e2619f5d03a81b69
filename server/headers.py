"""Security headers on every HTTP response, errors and 404s included.

A `before_send` hook rather than a middleware: Litestar runs middleware only for matched
routes, while this hook sees every response the app sends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from litestar.datastructures import MutableScopeHeaders
from litestar.routes import HTTPRoute
from litestar.types import Message, Scope

# JSON APIs render nothing: no scripts, no frames, no referrers to leak ids in URLs.
API_CSP = "default-src 'none'; frame-ancestors 'none'"

# The docs UI (server.openapi): Plaza's own scripts only, never inline; Swagger UI sets
# style attributes and uses data: icons, which cannot run code. No other origin at all.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)

BeforeSend = Callable[[Message, Scope], Awaitable[None]]


def security_headers(*, docs_prefix: str) -> BeforeSend:
    async def hook(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = MutableScopeHeaders.from_message(message)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "no-referrer")
        # Personal data (feeds, notifications) must not sit in shared caches; media set
        # their own long-lived public Cache-Control and keep it.
        headers.setdefault("Cache-Control", "no-store")
        # The docs UI loads scripts and styles; everything else gets the strict policy.
        docs = str(scope.get("path", "")).startswith(docs_prefix)
        headers.setdefault("Content-Security-Policy", DOCS_CSP if docs else API_CSP)

    return hook


def options_allow() -> BeforeSend:
    """`Allow` on the answer to OPTIONS lists every method of the path.

    Litestar 2 answers OPTIONS on a path served by several handlers with the methods of
    the first one only (litestar#4169, fixed in v3): its merged route keeps the OPTIONS
    handler of the first route. The routes themselves know all their methods.
    """
    methods_by_path: dict[str, str] = {}

    async def hook(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start" or scope.get("method") != "OPTIONS":
            return
        if not methods_by_path:
            for route in scope["litestar_app"].routes:
                if isinstance(route, HTTPRoute):
                    methods_by_path[route.path_format] = ", ".join(sorted(route.methods))
        allow = methods_by_path.get(str(scope.get("path_template", "")))
        headers = MutableScopeHeaders.from_message(message)
        if allow is not None and "allow" in headers:
            headers["Allow"] = allow

    return hook
