"""Secrets never reach the logs: a whole scenario against a real `plaza serve` — register,
login, refresh, a wrong password, sockets authenticated by header, by frame and with a bad
token, a password change, logout — then its captured output (stdout and stderr, uvicorn's
lines included) is searched for every token, password and key the scenario used."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.support.clients import PASSWORD, Ws
from tests.support.live_server import running_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SECRET_KEY = "s3cret-" + "k" * 40
NEW_PASSWORD = "a brand new passphrase 7"


async def login(http: httpx.AsyncClient, api: str, name: str, password: str) -> Any:
    r = await http.post(f"{api}/auth/login", json={"login": name, "password": password})
    assert r.status_code == 200, r.text
    return r.json()


async def test_no_token_password_or_key_is_ever_logged(tmp_path: Path) -> None:
    env = {"PLAZA_SECRET_KEY": SECRET_KEY}
    secrets: list[str] = [SECRET_KEY, PASSWORD, NEW_PASSWORD]
    with running_server(tmp_path, env) as server:
        async with httpx.AsyncClient(timeout=10) as http:
            name = f"s_{uuid.uuid4().hex[:8]}"
            r = await http.post(
                f"{server.api}/auth/register",
                json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
            )
            assert r.status_code == 201, r.text
            first = await login(http, server.api, name, PASSWORD)
            secrets += [first["access_token"], first["refresh_token"]]
            r = await http.post(
                f"{server.api}/auth/login", json={"login": name, "password": "not it at all"}
            )
            assert r.status_code == 401
            r = await http.post(
                f"{server.api}/auth/refresh", json={"refresh_token": first["refresh_token"]}
            )
            pair = r.json()
            secrets += [pair["access_token"], pair["refresh_token"]]
            # A replay of the spent refresh token (reuse detection logs a warning).
            r = await http.post(
                f"{server.api}/auth/refresh", json={"refresh_token": first["refresh_token"]}
            )
            assert r.status_code == 401
            session = await login(http, server.api, name, PASSWORD)
            secrets += [session["access_token"], session["refresh_token"]]
            auth = {"Authorization": f"Bearer {session['access_token']}"}

            async with await Ws.connect(server.ws_url, session["access_token"]) as by_header:
                await by_header.ok("subscribe", channel="feed")
            async with await Ws.connect(server.ws_url) as by_frame:
                await by_frame.ok("auth", token=session["access_token"])
            forged = session["access_token"][:-4] + "AAAA"
            secrets.append(forged)
            async with await Ws.connect(server.ws_url) as bad:
                reply = await bad.call("auth", token=forged)
                assert reply["ok"] is False and reply["error"]["code"] == "invalid_token"
            # A token in the query string is not how Plaza authenticates, but a client
            # may still send one: it must not be written out either.
            async with websockets.connect(
                f"{server.ws_url}?access_token={session['access_token']}"
            ) as conn:
                await conn.send(json.dumps({"id": 1, "op": "ping"}))
                await conn.recv()  # refused: authenticate first

            r = await http.post(
                f"{server.api}/auth/password",
                headers=auth,
                json={"old_password": PASSWORD, "new_password": NEW_PASSWORD},
            )
            assert r.status_code == 204, r.text
            last = await login(http, server.api, name, NEW_PASSWORD)
            secrets += [last["access_token"], last["refresh_token"]]
            r = await http.post(
                f"{server.api}/auth/logout", json={"refresh_token": last["refresh_token"]}
            )
            assert r.status_code == 204
        log = server.log()
    # The search means something only if the log holds what happened: startup, and the
    # requests and failures of the scenario.
    assert "Application startup complete" in log, log[:500]
    # Each of the four sockets has its access line (the query string is never logged).
    assert log.count("websocket open from") == 4, log
    leaked = [s[:12] + "…" for s in secrets if s in log]
    assert not leaked, f"secrets in the server's log: {leaked}"
    # Nor their tell-tale halves: a JWT's signature part, a refresh token's first 16 chars.
    for token in secrets[3:]:
        parts = token.split(".")
        fragment = parts[-1] if len(parts) == 3 else token[:16]
        assert fragment not in log, token[:12]
