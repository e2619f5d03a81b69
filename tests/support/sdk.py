"""Helpers for the end-to-end tests of the client SDK (plaza_client) against a real server:
accounts made through the SDK, images, and reading a live session with time limits."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

from PIL import Image

from plaza_client import AsyncClient, Backoff, LiveEvent, LiveSession, Me, TokenPair

PASSWORD = "correct horse battery"
T = TypeVar("T")


def fast_backoff() -> Backoff:
    """Reconnect within a fraction of a second (the default starts at up to 0.5 s)."""
    return Backoff(0.05, 0.25)


@dataclass
class Account:
    client: AsyncClient
    user: Me  # register answers Me: the public profile plus the email
    username: str
    email: str
    password: str = PASSWORD

    @property
    def id(self) -> str:
        return self.user.id


class Accounts:
    """Registers users through the SDK and closes every client it handed out."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._clients: list[AsyncClient] = []

    async def __aenter__(self) -> Accounts:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def client(
        self, tokens: TokenPair | None = None, *, base_url: str | None = None
    ) -> AsyncClient:
        client = AsyncClient(base_url or self.base_url, tokens=tokens)
        self._clients.append(client)
        return client

    async def new(
        self, prefix: str = "u", *, login: bool = True, base_url: str | None = None
    ) -> Account:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        client = self.client(base_url=base_url)
        user = await client.register(name, f"{name}@example.com", PASSWORD)
        if login:
            await client.login(name, PASSWORD)
        return Account(client, user, name, f"{name}@example.com")

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
        self._clients.clear()


def png(width: int = 8, height: int = 6, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


async def eventually(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float = 5.0
) -> T:
    """Poll `probe` until `done(result)` (or the time is up: the last result is returned
    for the caller's assertion to show)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if done(value) or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.05)


async def until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def next_event(live: LiveSession, timeout: float = 5.0) -> LiveEvent:
    return await asyncio.wait_for(anext(live), timeout)


async def take(
    live: LiveSession,
    count: int,
    *,
    where: Callable[[LiveEvent], bool] | None = None,
    timeout: float = 5.0,
) -> list[LiveEvent]:
    """The next `count` events (those matching `where`; others are skipped)."""
    out: list[LiveEvent] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(out) < count:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise AssertionError(f"got {len(out)} of {count} events: {out}")
        try:
            event = await next_event(live, remaining)
        except TimeoutError:
            raise AssertionError(f"got {len(out)} of {count} events: {out}") from None
        if where is None or where(event):
            out.append(event)
    return out


async def quiet(
    live: LiveSession, wait: float = 0.5, *, where: Callable[[LiveEvent], bool] | None = None
) -> None:
    """Assert that no (matching) event arrives for `wait` seconds."""
    deadline = asyncio.get_running_loop().time() + wait
    while (remaining := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            event = await next_event(live, remaining)
        except TimeoutError:
            return
        if where is None or where(event):
            raise AssertionError(f"unexpected event {event}")
