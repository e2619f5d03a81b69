"""A REST client bound to one in-process app, with helpers for the common steps.

Requests go through httpx's ASGITransport in the test's own event loop (not Litestar's
TestClient, whose portal thread runs the app on another loop and serialises requests):
concurrent requests then really interleave, and PostgreSQL pools stay on one loop.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from litestar import Litestar

from server.app import create_app, services_of
from server.container import Services
from server.settings import Settings
from tests.support.limits import UNLIMITED_SETTINGS

PASSWORD = "correct horse battery"
SECRET = "test-secret-key-" + "x" * 32
_names = itertools.count(1)


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "secret_key": SECRET,
        "media_dir": tmp_path / "media",
        **UNLIMITED_SETTINGS,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class User:
    id: str
    username: str
    email: str
    access_token: str
    refresh_token: str
    headers: dict[str, str] = field(default_factory=dict)


class Api:
    def __init__(self, app: Litestar, client: httpx.AsyncClient) -> None:
        self.app = app
        self.http = client

    @property
    def services(self) -> Services:
        return services_of(self.app)

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request(method, f"/api/v1{path}", **kwargs)

    async def get(self, path: str, user: User | None = None, **kw: Any) -> httpx.Response:
        return await self.request("GET", path, headers=_auth(user, kw), **kw)

    async def post(self, path: str, user: User | None = None, **kw: Any) -> httpx.Response:
        return await self.request("POST", path, headers=_auth(user, kw), **kw)

    async def put(self, path: str, user: User | None = None, **kw: Any) -> httpx.Response:
        return await self.request("PUT", path, headers=_auth(user, kw), **kw)

    async def patch(self, path: str, user: User | None = None, **kw: Any) -> httpx.Response:
        return await self.request("PATCH", path, headers=_auth(user, kw), **kw)

    async def delete(self, path: str, user: User | None = None, **kw: Any) -> httpx.Response:
        return await self.request("DELETE", path, headers=_auth(user, kw), **kw)

    async def user(self, name: str | None = None) -> User:
        """Register and log in a fresh user."""
        username = name or f"user{next(_names)}"
        email = f"{username}@example.com"
        r = await self.post(
            "/auth/register", json={"username": username, "email": email, "password": PASSWORD}
        )
        assert r.status_code == 201, r.text
        r = await self.post("/auth/login", json={"login": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        body = r.json()
        return User(
            id=body["user"]["id"],
            username=username,
            email=email,
            access_token=body["access_token"],
            refresh_token=body["refresh_token"],
            headers={"Authorization": f"Bearer {body['access_token']}"},
        )

    async def create_post(self, user: User, content: str = "hello", **kw: Any) -> dict[str, Any]:
        r = await self.post("/posts", user, json={"content": content, **kw})
        assert r.status_code == 201, r.text
        return cast(dict[str, Any], r.json())

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until the app's own event worker (relay and every consumer kind) has
        processed everything committed so far: the outbox has no open entry left."""
        outbox = self.services.storage.outbox_reader
        deadline = asyncio.get_running_loop().time() + timeout
        while await outbox.open_count():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{await outbox.open_count()} outbox entries still open")
            await asyncio.sleep(0.01)

    async def redeliver_everything(self) -> None:
        """Make every outbox entry pending again, as after a crash between side effects and
        acknowledgement: the next drain delivers each event once more."""
        await self.services.storage.db.execute(
            "UPDATE outbox SET completed_at = NULL, relay_epoch = NULL"
        )
        self.app.state.worker.wake()


def _auth(user: User | None, kw: dict[str, Any]) -> dict[str, str]:
    headers = dict(kw.pop("headers", None) or {})
    if user is not None:
        headers.setdefault("Authorization", f"Bearer {user.access_token}")
    return headers


@asynccontextmanager
async def lifespan_task(app: Litestar) -> AsyncIterator[None]:
    """Run the app's lifespan in a task of its own: it holds an anyio task group, which
    must be left by the task that entered it (pytest runs fixture setup and teardown in
    different tasks)."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(hold())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # startup failed: raise its error
    try:
        yield
    finally:
        stop.set()
        await task


@asynccontextmanager
async def running_api(settings: Settings, **create: Any) -> AsyncIterator[Api]:
    app = create_app(settings, migrate=True, **create)
    # Litestar's __call__ takes TypedDict scopes and events where httpx's ASGITransport
    # declares plain dicts, so mypy refuses Litestar there, though it is the same ASGI
    # call at run time. Both fit `Callable[..., Awaitable[None]]`, which needs no cast.
    asgi_app: Callable[..., Awaitable[None]] = app
    transport = httpx.ASGITransport(app=asgi_app, client=("10.0.0.1", 4321))
    async with (
        lifespan_task(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        yield Api(app, client)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    """The one error shape: {"error": {"code", "message", "details"?}}."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)
    assert set(body["error"]) <= {"code", "message", "details"}
    if code is not None:
        assert body["error"]["code"] == code, body


# Parametrize a test with this to run it on SQLite and on the real PostgreSQL.
BOTH_BACKENDS = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
