"""HTTP transport: base URL, bearer tokens, refresh-once-on-401, error mapping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import msgspec

from plaza_client.errors import (
    AuthError,
    NetworkError,
    PlazaError,
    ProtocolError,
    error_from_http,
)
from plaza_client.models import TokenPair

__all__ = ["API_PREFIX", "RestTransport"]

T = TypeVar("T")

API_PREFIX = "/api/v1"
# Refresh an access token this long before it expires, so a request (or a socket's
# re-auth) never races the expiry; well above clock skew and one slow round trip.
EXPIRY_MARGIN_S = 30.0
# ...but never more than this share of the token's life: a server issuing short tokens
# (PLAZA_ACCESS_TOKEN_TTL may be as low as 30 s) would otherwise have every token count
# as expiring the moment it arrives, and the client refresh in a loop.
EXPIRY_MARGIN_SHARE = 0.2
# Default REST timeout: long enough for an upload on a slow link, short enough that a
# dead server surfaces as an error rather than a hang.
DEFAULT_TIMEOUT_S = 30.0

TokenListener = Callable[[TokenPair | None], None]


class RestTransport:
    def __init__(
        self,
        base_url: str,
        *,
        tokens: TokenPair | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be http(s)://host[:port], got {base_url!r}")
        self.base_url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        self.ws_url = urlunsplit(
            (
                "wss" if parts.scheme == "https" else "ws",
                parts.netloc,
                f"{parts.path}{API_PREFIX}/ws",
                "",
                "",
            )
        )
        self._http = httpx.AsyncClient(
            base_url=self.base_url + API_PREFIX,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": "plaza-client/0.1", **(headers or {})},
        )
        self._tokens: TokenPair | None = None
        self._expires_at: float | None = None
        self._refresh_at: float | None = None
        self._refresh_lock: asyncio.Lock | None = None
        self._listeners: list[TokenListener] = []
        if tokens is not None:
            self.set_tokens(tokens)

    # -- tokens --------------------------------------------------------------------------

    @property
    def tokens(self) -> TokenPair | None:
        return self._tokens

    @property
    def expires_at(self) -> float | None:
        """time.monotonic() at which the access token expires, when the server said."""
        return self._expires_at

    @property
    def refresh_at(self) -> float | None:
        """time.monotonic() from which the access token counts as expiring: its expiry
        less a margin (EXPIRY_MARGIN_S, at most EXPIRY_MARGIN_SHARE of its life)."""
        return self._refresh_at

    def set_tokens(self, tokens: TokenPair | None) -> None:
        self._tokens = tokens
        if tokens is not None and tokens.expires_in:
            now = time.monotonic()
            margin = min(EXPIRY_MARGIN_S, tokens.expires_in * EXPIRY_MARGIN_SHARE)
            self._expires_at = now + tokens.expires_in
            self._refresh_at = self._expires_at - margin
        else:
            self._expires_at = self._refresh_at = None
        for listener in list(self._listeners):
            listener(tokens)

    def add_token_listener(self, listener: TokenListener) -> None:
        self._listeners.append(listener)

    def remove_token_listener(self, listener: TokenListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def auth_headers(self) -> dict[str, str]:
        if self._tokens is None:
            raise AuthError("not logged in", code="unauthenticated")
        return {"Authorization": f"Bearer {self._tokens.access_token}"}

    def expiring(self) -> bool:
        return self._refresh_at is not None and time.monotonic() > self._refresh_at

    async def refresh(self, *, stale_access_token: str | None = None) -> TokenPair:
        """Rotate the token pair. With `stale_access_token`, only if the current access
        token is still that one: the refresh token is single-use, so concurrent 401s must
        lead to one refresh, not one per request (the second would present a spent token,
        which the server treats as theft and answers by revoking the whole family)."""
        if self._refresh_lock is None:
            self._refresh_lock = asyncio.Lock()
        async with self._refresh_lock:
            current = self._tokens
            if current is None:
                raise AuthError("not logged in", code="unauthenticated")
            if stale_access_token is not None and current.access_token != stale_access_token:
                return current
            response = await self._send(
                "POST", "/auth/refresh", json={"refresh_token": current.refresh_token}
            )
            if response.status_code >= 400:
                error = self._error(response)
                if isinstance(error, AuthError):
                    self.set_tokens(None)  # the family is spent or revoked: log in again
                raise error
            pair = self.decode(response, TokenPair)
            if pair.user is None and current.user is not None:
                pair = msgspec.structs.replace(pair, user=current.user)
            self.set_tokens(pair)
            return pair

    # -- requests ------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        files: Any = None,
        auth: bool = True,
    ) -> httpx.Response:
        """Send a request; on 401 refresh the pair once and retry; raise on non-2xx."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        if auth and self._tokens is not None and self.expiring():
            await self.refresh(stale_access_token=self._tokens.access_token)
        used = self._tokens.access_token if auth and self._tokens is not None else None
        all_headers = {**(headers or {}), **(self.auth_headers() if auth else {})}
        response = await self._send(
            method, path, json=json, params=clean, headers=all_headers, files=files
        )
        if (
            response.status_code == 401
            and used is not None
            and self._tokens is not None
            and not self._wrong_credentials(response)
        ):
            await self.refresh(stale_access_token=used)
            all_headers.update(self.auth_headers())
            response = await self._send(
                method, path, json=json, params=clean, headers=all_headers, files=files
            )
        if response.status_code >= 400:
            raise self._error(response)
        return response

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if kwargs.get("json") is not None:
            kwargs["content"] = msgspec.json.encode(kwargs.pop("json"))
            kwargs["headers"] = {**kwargs.get("headers", {}), "Content-Type": "application/json"}
        else:
            kwargs.pop("json", None)
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise NetworkError(f"{method} {path}: {exc!r}") from exc

    @classmethod
    def _wrong_credentials(cls, response: httpx.Response) -> bool:
        # A 401 about a password (POST /auth/password with a wrong old one), not about the
        # token: refreshing would only rotate the pair and repeat the attempt.
        error = cls._error(response)
        return isinstance(error, PlazaError) and error.code == "invalid_credentials"

    @staticmethod
    def _error(response: httpx.Response) -> Exception:
        try:
            body = msgspec.json.decode(response.content) if response.content else None
        except msgspec.DecodeError:
            body = None
        return error_from_http(response.status_code, body, response.headers)

    @staticmethod
    def decode(response: httpx.Response, type_: type[T]) -> T:
        try:
            return msgspec.json.decode(response.content, type=type_)
        except msgspec.DecodeError as exc:
            raise ProtocolError(
                f"unexpected reply to {response.request.method} {response.request.url.path}: {exc}"
            ) from exc

    async def aclose(self) -> None:
        await self._http.aclose()
