"""Client: the AsyncClient surface, synchronous, for scripts and notebooks.

The AsyncClient runs on a private event loop in a daemon thread and every method blocks
on its coroutine there. Unlike asyncio.run() per call, this works where a loop is already
running in the calling thread (Jupyter), keeps one HTTP connection pool and lets a live
session keep reading in the background between two calls.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from types import TracebackType
from typing import Any, Literal, TypedDict, TypeVar, Unpack, overload

import httpx

from plaza_client.client import AsyncClient, FileInput
from plaza_client.events import LiveEvent, Position
from plaza_client.live import LiveSession, Subscription
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

__all__ = ["Client", "SyncLiveSession"]

T = TypeVar("T")


class OlderPaging(TypedDict, total=False):
    limit: int | None
    max_id: str | None


class Paging(OlderPaging, total=False):
    since_id: str | None
    min_id: str | None


class ProfileFields(TypedDict, total=False):
    display_name: str | None
    bio: str | None
    avatar_media_id: str | None
    clear_avatar: bool


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        # A daemon thread: a script that forgets close() still exits.
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="plaza-client", daemon=True
        )
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("a sync Client method was called from its own event loop")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()  # Ctrl-C or a timeout: do not leave the work running
            raise

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


class Client:
    """`with Client(url) as c:` — the same methods as AsyncClient, blocking."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        tokens: TokenPair | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._runner = _LoopThread()

        async def make() -> AsyncClient:
            return AsyncClient(base_url, tokens=tokens, timeout=timeout, transport=transport)

        self._async = self._runner.run(make())

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if not self._runner.loop.is_closed():
            self._run(self._async.aclose())
            self._runner.stop()

    @property
    def aio(self) -> AsyncClient:
        """The underlying AsyncClient (use only from its own loop)."""
        return self._async

    @property
    def base_url(self) -> str:
        return self._async.base_url

    @property
    def tokens(self) -> TokenPair | None:
        return self._async.tokens

    @property
    def user(self) -> Me | None:
        return self._async.user

    # -- auth and users ------------------------------------------------------------------

    def register(self, username: str, email: str, password: str) -> Me:
        return self._run(self._async.register(username, email, password))

    def login(self, login: str, password: str) -> TokenPair:
        return self._run(self._async.login(login, password))

    def refresh(self) -> TokenPair:
        return self._run(self._async.refresh())

    def logout(self) -> None:
        self._run(self._async.logout())

    def logout_all(self) -> None:
        self._run(self._async.logout_all())

    def change_password(self, old_password: str, new_password: str) -> None:
        self._run(self._async.change_password(old_password, new_password))

    def me(self) -> Me:
        return self._run(self._async.me())

    def get_user(self, user_id: str) -> User:
        return self._run(self._async.get_user(user_id))

    def update_profile(self, **fields: Unpack[ProfileFields]) -> Me:
        return self._run(self._async.update_profile(**fields))

    def user_posts(self, user_id: str, **paging: Unpack[Paging]) -> Page[Post]:
        return self._run(self._async.user_posts(user_id, **paging))

    def followers(self, user_id: str, **paging: Unpack[OlderPaging]) -> Page[User]:
        return self._run(self._async.followers(user_id, **paging))

    def following(self, user_id: str, **paging: Unpack[OlderPaging]) -> Page[User]:
        return self._run(self._async.following(user_id, **paging))

    def relationship(self, user_id: str) -> Relationship:
        return self._run(self._async.relationship(user_id))

    def follow(self, user_id: str) -> Relationship:
        return self._run(self._async.follow(user_id))

    def unfollow(self, user_id: str) -> Relationship:
        return self._run(self._async.unfollow(user_id))

    def block(self, user_id: str) -> Relationship:
        return self._run(self._async.block(user_id))

    def unblock(self, user_id: str) -> Relationship:
        return self._run(self._async.unblock(user_id))

    # -- posts ---------------------------------------------------------------------------

    def create_post(
        self,
        content: str,
        media_ids: list[str] | None = None,
        idempotency_key: str | None = None,
    ) -> Post:
        return self._run(self._async.create_post(content, media_ids, idempotency_key))

    def get_post(self, post_id: str) -> Post:
        return self._run(self._async.get_post(post_id))

    def delete_post(self, post_id: str) -> None:
        self._run(self._async.delete_post(post_id))

    def like(self, post_id: str) -> Post:
        return self._run(self._async.like(post_id))

    def unlike(self, post_id: str) -> Post:
        return self._run(self._async.unlike(post_id))

    def likes(self, post_id: str, **paging: Unpack[OlderPaging]) -> Page[User]:
        return self._run(self._async.likes(post_id, **paging))

    def comment(self, post_id: str, content: str) -> Comment:
        return self._run(self._async.comment(post_id, content))

    def comments(self, post_id: str, **paging: Unpack[Paging]) -> Page[Comment]:
        return self._run(self._async.comments(post_id, **paging))

    # -- feed, notifications, search, media ----------------------------------------------

    def feed(self, **paging: Unpack[Paging]) -> Page[Post]:
        return self._run(self._async.feed(**paging))

    def notifications(self, **paging: Unpack[Paging]) -> Page[Notification]:
        return self._run(self._async.notifications(**paging))

    def mark_read(self, up_to_id: str | None = None) -> int | None:
        return self._run(self._async.mark_read(up_to_id))

    def unread_count(self) -> int:
        return self._run(self._async.unread_count())

    @overload
    def search(
        self, q: str, type: Literal["posts"] = ..., **paging: Unpack[OlderPaging]
    ) -> Page[Post]: ...
    @overload
    def search(
        self, q: str, type: Literal["users"], **paging: Unpack[OlderPaging]
    ) -> Page[User]: ...
    def search(
        self, q: str, type: Literal["posts", "users"] = "posts", **paging: Unpack[OlderPaging]
    ) -> Page[Post] | Page[User]:
        if type == "users":
            return self._run(self._async.search(q, "users", **paging))
        return self._run(self._async.search(q, "posts", **paging))

    def upload_media(
        self, file: FileInput, *, filename: str | None = None, content_type: str | None = None
    ) -> Media:
        return self._run(
            self._async.upload_media(file, filename=filename, content_type=content_type)
        )

    def media_bytes(self, media_id: str) -> bytes:
        return self._run(self._async.media_bytes(media_id))

    def health(self) -> bool:
        return self._run(self._async.health())

    def ready(self) -> bool:
        return self._run(self._async.ready())

    # -- live ----------------------------------------------------------------------------

    def live(self, **options: Any) -> SyncLiveSession:
        """`with c.live() as live: live.subscribe("feed"); for event in live: ...`"""

        async def make() -> LiveSession:
            return self._async.live(**options)

        return SyncLiveSession(self._runner, self._run(make()))


class SyncLiveSession:
    """A LiveSession driven from synchronous code; it keeps reading (and reconnecting) on
    the client's loop thread while the caller is busy."""

    def __init__(self, runner: _LoopThread, session: LiveSession) -> None:
        self._runner = runner
        self.aio = session

    def __enter__(self) -> SyncLiveSession:
        self._runner.run(self.aio.connect())
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._runner.run(self.aio.close())

    @property
    def positions(self) -> dict[str, Position]:
        return self.aio.positions

    @property
    def connected(self) -> bool:
        return self.aio.connected

    def subscribe(self, channel: str, since: Position | None = None) -> Subscription:
        return self._runner.run(self.aio.subscribe(channel, since))

    def unsubscribe(self, channel: str) -> None:
        self._runner.run(self.aio.unsubscribe(channel))

    def call(self, op: str, /, **args: Any) -> Any:
        return self._runner.run(self.aio.call(op, **args))

    def ping(self) -> None:
        self._runner.run(self.aio.ping())

    def page(self, op: str, item_type: type[Any], **args: Any) -> Page[Any]:
        return self._runner.run(self.aio.page(op, item_type, **args))

    def next_event(self, timeout: float | None = None) -> LiveEvent | None:
        """The next event; None when the session was closed by the client; raises
        TimeoutError after `timeout` seconds, SessionClosed if the session ended."""

        async def next_or_none() -> LiveEvent | None:
            try:
                return await asyncio.wait_for(self.aio.__anext__(), timeout)
            except StopAsyncIteration:
                return None

        return self._runner.run(next_or_none())

    def __iter__(self) -> Iterator[LiveEvent]:
        while (event := self.next_event()) is not None:
            yield event
