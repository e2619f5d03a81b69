"""The WebSocket session in process (Litestar's test client): token expiry on the real
clock, that a closed socket leaves nothing behind, and the shared write limit."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, cast

import jwt
import pytest
from api_world import PASSWORD, make_settings
from litestar import Litestar
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient

from channels.memory import MemoryBackend
from server.app import create_app, services_of
from server.ratelimit import Rate


def _app(tmp_path: Path, *, access_ttl: int = 900, **overrides: Any) -> Litestar:
    # A token TTL shorter than the environment allows (30 s), so expiry is testable in a
    # second or two.
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'plaza.db'}", access_token_ttl=access_ttl, **overrides
    )
    # No event worker: these tests need no relayed events.
    return create_app(settings, migrate=True, workers=False)


def _login(client: TestClient[Any], name: str) -> dict[str, Any]:
    body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
    if client.post("/api/v1/auth/login", json={"login": name, "password": PASSWORD}).is_error:
        assert client.post("/api/v1/auth/register", json=body).status_code == 201
    r = client.post("/api/v1/auth/login", json={"login": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return cast(dict[str, Any], r.json())


def _exp(token: str) -> float:
    claims = jwt.decode(token, options={"verify_signature": False})
    return float(claims["exp"])


def test_socket_closes_4401_when_its_token_expires(tmp_path: Path) -> None:
    """One real check of the expiry deadline on the wall clock; re-auth extending it, and
    every other time-driven rule, are the session core's unit tests (test_ws_core.py)."""
    # exp is whole seconds: a 2 s token has 1-2 s left when the socket opens.
    app = _app(tmp_path, access_ttl=2)
    with TestClient(app) as client:
        token = _login(client, "ada")["access_token"]
        with client.websocket_connect(
            "/api/v1/ws", headers={"Authorization": f"Bearer {token}"}
        ) as ws:
            ws.send_json({"id": 1, "op": "ping"})
            assert ws.receive_json() == {"id": 1, "ok": True, "result": {}}
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert (closed.value.code, closed.value.detail) == (4401, "token expired")
            assert time.time() >= _exp(token) - 0.05


def test_a_closed_socket_leaves_nothing_behind(tmp_path: Path) -> None:
    app = _app(tmp_path)
    with TestClient(app) as client:
        token = _login(client, "bob")["access_token"]
        post = client.post(
            "/api/v1/posts", json={"content": "x"}, headers={"Authorization": f"Bearer {token}"}
        ).json()
        live = services_of(app)
        backend = cast(MemoryBackend, live.hub.backend)
        channels = ["feed", "notifications", "public", f"post:{post['id']}"]
        for _ in range(3):
            with client.websocket_connect(
                "/api/v1/ws", headers={"Authorization": f"Bearer {token}"}
            ) as ws:
                for n, channel in enumerate(channels):
                    ws.send_json({"id": n + 1, "op": "subscribe", "channel": channel})
                    reply = ws.receive_json()
                    while "push" in reply:  # the post's own event may still be on its way
                        reply = ws.receive_json()
                    assert reply["id"] == n + 1 and reply["ok"] is True
                assert len(live.sessions) == 1
                assert live.hub.channel_count == len(channels)
                assert len(backend.subscribed) == len(channels)
            deadline = time.monotonic() + 5
            while (len(live.sessions) or live.hub.channel_count) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(live.sessions) == 0
            assert live.sessions.count(int(post["author"]["id"])) == 0
            assert live.hub.channel_count == 0
            assert backend.subscribed == frozenset()


def test_socket_writes_share_the_rest_write_limit(tmp_path: Path) -> None:
    app = _app(tmp_path, rate_writes_per_user_per_minute=3)
    with TestClient(app) as client:
        token = _login(client, "cyd")["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert client.post("/api/v1/posts", json={"content": "rest"}, headers=auth).is_success
        with client.websocket_connect("/api/v1/ws", headers=auth) as ws:
            for n in (1, 2):
                ws.send_json({"id": n, "op": "post.create", "content": f"ws {n}"})
                assert ws.receive_json()["ok"] is True
            ws.send_json({"id": 3, "op": "post.create", "content": "one too many"})
            limited = ws.receive_json()
            assert limited["ok"] is False
            assert limited["error"]["code"] == "rate_limited"
            assert limited["error"]["retryable"] is True
            assert limited["error"]["details"]["retry_after"] > 0
            ws.send_json({"id": 4, "op": "feed.page"})  # reads are not writes
            assert len(ws.receive_json()["result"]["items"]) == 3
        r = client.post("/api/v1/posts", json={"content": "rest again"}, headers=auth)
        assert r.status_code == 429 and "retry-after" in r.headers


def test_socket_posts_and_likes_spend_their_rest_buckets_too(tmp_path: Path) -> None:
    app = _app(
        tmp_path,
        rate_posts_per_user=Rate(2, 3 * 3600),
        rate_interactions_per_user=Rate(1, 3600),
    )
    with TestClient(app) as client:
        token = _login(client, "dot")["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        first = client.post("/api/v1/posts", json={"content": "rest"}, headers=auth).json()
        with client.websocket_connect("/api/v1/ws", headers=auth) as ws:
            ws.send_json({"id": 1, "op": "post.create", "content": "ws"})
            assert ws.receive_json()["ok"] is True
            ws.send_json({"id": 2, "op": "post.create", "content": "a third post"})
            refused = ws.receive_json()
            assert refused["ok"] is False and refused["error"]["code"] == "rate_limited"
            ws.send_json({"id": 3, "op": "post.like", "post_id": first["id"]})
            assert ws.receive_json()["ok"] is True  # a like is not a post
            ws.send_json({"id": 4, "op": "comment.create", "post_id": first["id"], "content": "hi"})
            refused = ws.receive_json()
            assert refused["ok"] is False and "like or comment" in refused["error"]["message"]
            ws.send_json({"id": 5, "op": "user.follow", "user_id": first["author"]["id"]})
            assert ws.receive_json()["error"]["code"] != "rate_limited"  # neither
