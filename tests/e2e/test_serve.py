"""`plaza serve` as a real process over real HTTP: the quick start works end to end."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.live_server import running_server

pytestmark = pytest.mark.e2e


def test_register_login_post_and_read_the_feed(tmp_path: Path) -> None:
    with running_server(tmp_path) as live, httpx.Client(base_url=live.api) as http:
        credentials = {"username": "eve", "email": "eve@example.com", "password": "pa55word!"}
        r = http.post("/auth/register", json=credentials)
        assert r.status_code == 201, r.text
        r = http.post("/auth/login", json={"login": "eve", "password": "pa55word!"})
        assert r.status_code == 200, r.text
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        r = http.post("/posts", json={"content": "hello from e2e"}, headers=auth)
        assert r.status_code == 201, r.text
        post_id = r.json()["id"]
        r = http.get("/feed", headers=auth)
        assert r.status_code == 200
        assert [p["id"] for p in r.json()] == [post_id]
        assert 'rel="next"' in r.headers["link"]
        assert "server" not in r.headers  # uvicorn's banner header is off
        assert http.get("/ready").status_code == 200
        log = live.log()
    # The embedded defaults put everything under ./var of the working directory.
    assert (tmp_path / "var" / "plaza.db").exists()
    assert "eve" not in log
