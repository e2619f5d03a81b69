"""Security headers on every HTTP response, errors and 404s included.

A `before_send` hook rather than a middleware: Litestar runs middleware only for matched
routes, while this hook sees every response the app sends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

# JSON APIs render nothing: no scripts, no frames, no referrers to leak ids in URLs.
API_CSP = "default-src 'none'; frame-ancestors 'none'"

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
        if not str(scope.get("path", "")).startswith(docs_prefix):
            headers.setdefault("Content-Security-Policy", API_CSP)

    return hook
