"""The database goes away under a running server (a private cluster: stopped, then frozen):
requests are answered 503 `unavailable` with Retry-After within the statement deadline,
the outage is logged once and its end once, and the server recovers by itself."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import httpx
import pytest
from api_world import PASSWORD, Api, make_settings, running_api

from storage.db import STATEMENT_DEADLINE_S
from tests.support.pg_cluster import PrivatePostgres

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# A request may wait one statement deadline, plus the time the app needs around it.
ANSWER_WITHIN_S = STATEMENT_DEADLINE_S + 2.0


def assert_unavailable(r: httpx.Response, took: float) -> None:
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "unavailable"
    assert int(r.headers["Retry-After"]) >= 1
    assert took < ANSWER_WITHIN_S, took


async def timed(api: Api, method: str, path: str, **kw: object) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    r = await api.request(method, path, **kw)
    return r, time.monotonic() - started


async def until_ok(api: Api, path: str, headers: dict[str, str], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while True:
        r = await api.request("GET", path, headers=headers)
        if r.status_code == 200:
            return
        assert time.monotonic() < deadline, (
            f"still {r.status_code} {r.text} after the database is back"
        )
        await asyncio.sleep(0.2)


def outage_logs(caplog: pytest.LogCaptureFixture) -> tuple[int, int]:
    records = [r for r in caplog.records if r.name == "storage.db"]
    down = sum(1 for r in records if r.getMessage().startswith("database unavailable"))
    back = sum(1 for r in records if r.getMessage().startswith("database is back"))
    return down, back


async def test_a_stopped_then_frozen_database_answers_503_and_recovers(
    private_postgres: PrivatePostgres, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with running_api(make_settings(tmp_path, private_postgres.url)) as api:
        user = await api.user("ada")
        await api.create_post(user, "before the outage")
        auth = user.headers

        private_postgres.stop()
        for method, path, kw in (
            ("GET", "/feed", {}),
            ("POST", "/posts", {"json": {"content": "during"}}),
            ("GET", f"/users/{user.id}", {}),
            ("POST", "/auth/login", {"json": {"login": "ada", "password": PASSWORD}}),
        ):
            r, took = await timed(api, method, path, headers=auth, **kw)
            assert_unavailable(r, took)
        assert outage_logs(caplog) == (1, 0)  # once for the whole outage, not per request
        ready = await api.request("GET", "/ready")
        assert ready.status_code == 503

        private_postgres.start()
        await until_ok(api, "/feed", auth)
        assert outage_logs(caplog) == (1, 1)

        private_postgres.freeze()
        try:
            r, took = await timed(api, "GET", "/feed", headers=auth)
            assert_unavailable(r, took)
            r, took = await timed(api, "POST", "/posts", headers=auth, json={"content": "x"})
            assert_unavailable(r, took)
        finally:
            private_postgres.thaw()
        await until_ok(api, "/feed", auth)
        feed = (await api.request("GET", "/feed", headers=auth)).json()
        assert "before the outage" in [p["content"] for p in feed]
    # Two outages, each logged once by the storage layer, at most once each by the
    # in-process relay (it may sleep through the short freeze), and no traceback per
    # request or per retry.
    assert outage_logs(caplog) == (2, 2)
    relay = [r.getMessage() for r in caplog.records if r.name == "plaza.relay"]
    assert 1 <= sum(1 for m in relay if m.startswith("outbox relay paused")) <= 2
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
