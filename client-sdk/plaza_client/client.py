"""AsyncClient: the REST surface of docs/protocol.md, plus `live()` for the WebSocket session."""

from __future__ import annotations

import os
from types import TracebackType
from typing import IO, Any, Literal, TypeVar, overload

import httpx
import msgspec

from plaza_client._media import read_upload
from plaza_client._rest import RestTransport
from plaza_client.errors import AuthError
from plaza_client.live import LiveSession
from plaza_client.models import (
    Comment,
    Me,
    Media,
    Notification,
    Page,
    Post,
    Relationship,
    TokenPair,
    User,
)
from plaza_client.paging import page_of

__all__ = ["AsyncClient", "FileInput"]

T = TypeVar("T", User, Post, Comment, Notification)
FileInput = str | os.PathLike[str] | bytes | IO[bytes]
SearchType = Literal["posts", "users"]


class _UnreadCount(msgspec.Struct):
    count: int


class AsyncClient:
    """Async client of one Plaza server. Use as `async with AsyncClient(url) as c:`.

    After `login()` it keeps the token pair: a request answered 401 refreshes the pair
    once (POST /auth/refresh rotates it) and is retried; a token about to expire is
    refreshed before use. `tokens` may be saved and passed back to resume a login.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        tokens: TokenPair | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._rest = RestTransport(base_url, tokens=tokens, timeout=timeout, transport=transport)
        self._me: Me | None = tokens.user if tokens is not None else None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._rest.aclose()

    @property
    def base_url(self) -> str:
        return self._rest.base_url

    @property
    def ws_url(self) -> str:
        return self._rest.ws_url

    @property
    def tokens(self) -> TokenPair | None:
        return self._rest.tokens

    @property
    def user(self) -> Me | None:
        """The logged-in user's own profile, when known (from login or `me()`)."""
        return self._me

    @property
    def transport(self) -> RestTransport:
        return self._rest

    # -- auth ----------------------------------------------------------------------------

    async def register(self, username: str, email: str, password: str) -> Me:
        """Create an account (no tokens are issued: `login()` next). A taken username or
        email raises Conflict."""
        body = {"username": username, "email": email, "password": password}
        response = await self._rest.request("POST", "/auth/register", json=body, auth=False)
        return self._rest.decode(response, Me)

    async def login(self, login: str, password: str) -> TokenPair:
        """Log in with an email or a username; keeps the returned token pair."""
        # The server takes either field; an "@" cannot occur in a username.
        field = "email" if "@" in login else "username"
        body = {field: login, "password": password}
        response = await self._rest.request("POST", "/auth/login", json=body, auth=False)
        pair = self._rest.decode(response, TokenPair)
        self._rest.set_tokens(pair)
        self._me = pair.user
        return pair

    async def refresh(self) -> TokenPair:
        """Rotate the token pair now (the old refresh token is spent)."""
        return await self._rest.refresh()

    async def logout_all(self) -> None:
        """Revoke every login of the account (all devices), then forget the tokens."""
        try:
            await self._rest.request("POST", "/auth/logout_all")
        finally:
            self._rest.set_tokens(None)
            self._me = None

    async def change_password(self, old_password: str, new_password: str) -> None:
        body = {"old_password": old_password, "new_password": new_password}
        await self._rest.request("POST", "/auth/password", json=body)

    async def logout(self) -> None:
        """Revoke this login's token family (its live sockets are closed with 4401)."""
        tokens = self._rest.tokens
        if tokens is None:
            return
        try:
            await self._rest.request(
                "POST", "/auth/logout", json={"refresh_token": tokens.refresh_token}
            )
        except AuthError:
            pass  # already revoked or expired: the goal is reached
        finally:
            self._rest.set_tokens(None)
            self._me = None

    # -- users ---------------------------------------------------------------------------

    async def me(self) -> Me:
        """The caller's own profile, with its email."""
        response = await self._rest.request("GET", "/users/me")
        self._me = self._rest.decode(response, Me)
        return self._me

    async def _my_id(self) -> str:
        return (self._me or await self.me()).id

    async def get_user(self, user_id: str) -> User:
        """A public profile (no email, even your own: use `me()` for that)."""
        return self._rest.decode(await self._rest.request("GET", f"/users/{user_id}"), User)

    async def update_profile(
        self,
        *,
        display_name: str | None = None,
        bio: str | None = None,
        avatar_media_id: str | None = None,
        clear_avatar: bool = False,
    ) -> Me:
        """Change the given fields of the caller's profile (PATCH); others are kept."""
        body: dict[str, Any] = {}
        if display_name is not None:
            body["display_name"] = display_name
        if bio is not None:
            body["bio"] = bio
        if avatar_media_id is not None or clear_avatar:
            body["avatar_media_id"] = avatar_media_id
        user_id = await self._my_id()
        response = await self._rest.request("PATCH", f"/users/{user_id}", json=body)
        self._me = self._rest.decode(response, Me)
        return self._me

    async def user_posts(
        self,
        user_id: str,
        *,
        limit: int | None = None,
        max_id: str | None = None,
        since_id: str | None = None,
        min_id: str | None = None,
    ) -> Page[Post]:
        return await self._list(f"/users/{user_id}/posts", Post, limit, max_id, since_id, min_id)

    async def followers(
        self, user_id: str, *, limit: int | None = None, max_id: str | None = None
    ) -> Page[User]:
        return await self._list(f"/users/{user_id}/followers", User, limit, max_id)

    async def following(
        self, user_id: str, *, limit: int | None = None, max_id: str | None = None
    ) -> Page[User]:
        return await self._list(f"/users/{user_id}/following", User, limit, max_id)

    async def relationship(self, user_id: str) -> Relationship:
        """How the caller and `user_id` relate (following, followed_by, blocking)."""
        return await self._relationship("GET", f"/users/{user_id}/relationship")

    async def follow(self, user_id: str) -> Relationship:
        return await self._relationship("POST", f"/users/{user_id}/follow")

    async def unfollow(self, user_id: str) -> Relationship:
        return await self._relationship("DELETE", f"/users/{user_id}/follow")

    async def block(self, user_id: str) -> Relationship:
        return await self._relationship("POST", f"/users/{user_id}/block")

    async def unblock(self, user_id: str) -> Relationship:
        return await self._relationship("DELETE", f"/users/{user_id}/block")

    async def _relationship(self, method: str, path: str) -> Relationship:
        return self._rest.decode(await self._rest.request(method, path), Relationship)

    # -- posts ---------------------------------------------------------------------------

    async def create_post(
        self,
        content: str,
        media_ids: list[str] | None = None,
        idempotency_key: str | None = None,
    ) -> Post:
        """Publish a post. With `idempotency_key`, retrying after a lost reply returns the
        same post instead of creating a second one."""
        body: dict[str, Any] = {"content": content}
        if media_ids:
            body["media_ids"] = list(media_ids)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        response = await self._rest.request("POST", "/posts", json=body, headers=headers)
        return self._rest.decode(response, Post)

    async def get_post(self, post_id: str) -> Post:
        return self._rest.decode(await self._rest.request("GET", f"/posts/{post_id}"), Post)

    async def delete_post(self, post_id: str) -> None:
        await self._rest.request("DELETE", f"/posts/{post_id}")

    async def like(self, post_id: str) -> Post:
        return self._rest.decode(await self._rest.request("POST", f"/posts/{post_id}/likes"), Post)

    async def unlike(self, post_id: str) -> Post:
        response = await self._rest.request("DELETE", f"/posts/{post_id}/likes")
        return self._rest.decode(response, Post)

    async def likes(
        self, post_id: str, *, limit: int | None = None, max_id: str | None = None
    ) -> Page[User]:
        return await self._list(f"/posts/{post_id}/likes", User, limit, max_id)

    async def comment(self, post_id: str, content: str) -> Comment:
        response = await self._rest.request(
            "POST", f"/posts/{post_id}/comments", json={"content": content}
        )
        return self._rest.decode(response, Comment)

    async def comments(
        self,
        post_id: str,
        *,
        limit: int | None = None,
        max_id: str | None = None,
        since_id: str | None = None,
        min_id: str | None = None,
    ) -> Page[Comment]:
        return await self._list(
            f"/posts/{post_id}/comments", Comment, limit, max_id, since_id, min_id
        )

    # -- feed, notifications, search -----------------------------------------------------

    async def feed(
        self,
        *,
        limit: int | None = None,
        max_id: str | None = None,
        since_id: str | None = None,
        min_id: str | None = None,
    ) -> Page[Post]:
        """The caller's home feed, newest first; pass `max_id=page.next` for older."""
        return await self._list("/feed", Post, limit, max_id, since_id, min_id)

    async def notifications(
        self,
        *,
        limit: int | None = None,
        max_id: str | None = None,
        since_id: str | None = None,
        min_id: str | None = None,
    ) -> Page[Notification]:
        user_id = await self._my_id()
        return await self._list(
            f"/users/{user_id}/notifications", Notification, limit, max_id, since_id, min_id
        )

    async def mark_read(self, up_to_id: str | None = None) -> int | None:
        """Mark notifications read: all of them, or those up to and including `up_to_id`.
        Returns the unread count left, when the server says."""
        body = {} if up_to_id is None else {"up_to_id": up_to_id}
        response = await self._rest.request("POST", "/notifications/read", json=body)
        return self._rest.decode(response, _UnreadCount).count if response.content else None

    async def unread_count(self) -> int:
        response = await self._rest.request("GET", "/notifications/unread_count")
        return self._rest.decode(response, _UnreadCount).count

    @overload
    async def search(
        self,
        q: str,
        type: Literal["posts"] = ...,
        *,
        limit: int | None = ...,
        max_id: str | None = ...,
    ) -> Page[Post]: ...
    @overload
    async def search(
        self, q: str, type: Literal["users"], *, limit: int | None = ..., max_id: str | None = ...
    ) -> Page[User]: ...
    async def search(
        self,
        q: str,
        type: SearchType = "posts",
        *,
        limit: int | None = None,
        max_id: str | None = None,
    ) -> Page[Post] | Page[User]:
        params = {"q": q, "type": type, "limit": limit, "max_id": max_id}
        response = await self._rest.request("GET", "/search", params=params)
        link = response.headers.get("link")
        if type == "users":
            return page_of(self._rest.decode(response, list[User]), link)
        return page_of(self._rest.decode(response, list[Post]), link)

    # -- media ---------------------------------------------------------------------------

    async def upload_media(
        self, file: FileInput, *, filename: str | None = None, content_type: str | None = None
    ) -> Media:
        """Upload an image (a path, bytes or a binary file object) as multipart `file`."""
        name, data, ctype = read_upload(file, filename=filename, content_type=content_type)
        response = await self._rest.request("POST", "/media", files={"file": (name, data, ctype)})
        return self._rest.decode(response, Media)

    async def media_bytes(self, media_id: str) -> bytes:
        """The stored bytes of a media item (GET /media/{id})."""
        return (await self._rest.request("GET", f"/media/{media_id}")).content

    # -- service -------------------------------------------------------------------------

    async def health(self) -> bool:
        """True when the server answers GET /health."""
        await self._rest.request("GET", "/health", auth=False)
        return True

    async def ready(self) -> bool:
        """True when the server's database and broker are reachable (GET /ready)."""
        await self._rest.request("GET", "/ready", auth=False)
        return True

    # -- live ----------------------------------------------------------------------------

    def live(self, **options: Any) -> LiveSession:
        """A WebSocket session (`async with c.live() as live:`); see LiveSession."""
        return LiveSession(self, **options)

    # -- helpers -------------------------------------------------------------------------

    async def _list(
        self,
        path: str,
        item: type[T],
        limit: int | None,
        max_id: str | None,
        since_id: str | None = None,
        min_id: str | None = None,
    ) -> Page[T]:
        params = {"limit": limit, "max_id": max_id, "since_id": since_id, "min_id": min_id}
        response = await self._rest.request("GET", path, params=params)
        items = self._rest.decode(response, list[item])  # type: ignore[valid-type]
        return page_of(items, response.headers.get("link"))
